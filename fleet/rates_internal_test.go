package fleet

import (
	"math"
	"math/rand/v2"
	"testing"
)

// deltasByName and cpuRatesByID are deltas and cpuRates as they were, every
// sample's devices paired through a map: the reference for
// TestRatesInOrderAsByKey.
func deltasByName(prev, cur []devCounter) (devCounter, bool) {
	var d devCounter
	byName := make(map[string]devCounter, len(prev))
	for _, p := range prev {
		byName[p.name] = p
	}
	matched := 0
	for _, c := range cur {
		p, ok := byName[c.name]
		if !ok {
			continue
		}
		delete(byName, c.name)
		if c.a < p.a || c.b < p.b || c.c < p.c || c.d < p.d {
			return devCounter{}, false
		}
		var o1, o2, o3, o4 bool
		d.a, o1 = sum(d.a, c.a-p.a)
		d.b, o2 = sum(d.b, c.b-p.b)
		d.c, o3 = sum(d.c, c.c-p.c)
		d.d, o4 = sum(d.d, c.d-p.d)
		if !o1 || !o2 || !o3 || !o4 {
			return devCounter{}, false
		}
		matched++
	}
	return d, matched > 0
}

func cpuRatesByID(prev, cur []cpuCounter, dt float64) (busy, iowait, steal Rate) {
	byID := make(map[int]cpuCounter, len(prev))
	for _, p := range prev {
		byID[p.id] = p
	}
	var total, idle, wait, stolen float64
	matched := 0
	limit := (cpuSlack*dt + 1) * 1000
	for _, c := range cur {
		p, ok := byID[c.id]
		if !ok {
			continue
		}
		delete(byID, c.id)
		if c.total < p.total || c.idle < p.idle || c.iowait < p.iowait || c.steal < p.steal {
			return
		}
		dTotal := c.total - p.total
		dIdle, dWait, dSteal := c.idle-p.idle, c.iowait-p.iowait, c.steal-p.steal
		if float64(dTotal) > limit || dIdle+dWait+dSteal > dTotal {
			return
		}
		total += float64(dTotal)
		idle += float64(dIdle)
		wait += float64(dWait)
		stolen += float64(dSteal)
		matched++
	}
	if matched == 0 || total == 0 {
		return
	}
	pct := func(v float64) Rate { return Rate{min(100, max(0, 100*v/total)), true} }
	return pct(total - idle - wait - stolen), pct(wait), pct(stolen)
}

// Rates from samples that list the same devices in the same order (paired
// by index) are those the map pairs: and for samples that do not (devices
// added, gone, reordered, listed twice, lists past maxInOrder), the map
// pairs them as before. Counters grow, stay, go back or overflow.
func TestRatesInOrderAsByKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"vda", "vdb", "loop0", "loop1", "sr0", "eth0", "lo"}
	counter := func() uint64 {
		switch rng.IntN(8) {
		case 0:
			return math.MaxUint64 - uint64(rng.IntN(3))
		case 1:
			return 0
		}
		return uint64(rng.IntN(1 << 20))
	}
	for step := range 50000 {
		n := rng.IntN(6)
		if step%50 == 0 {
			n = maxInOrder + rng.IntN(3) - 1 // around the bound
		}
		var prevD, curD []devCounter
		var prevC, curC []cpuCounter
		for i := range n {
			name := names[rng.IntN(len(names))]
			if rng.IntN(3) > 0 {
				name = names[i%len(names)] + string(rune('a'+i/len(names))) // mostly distinct
			}
			p := devCounter{name: name, a: counter(), b: counter(), c: counter(), d: counter()}
			prevD = append(prevD, p)
			id := i
			if rng.IntN(10) == 0 {
				id = rng.IntN(n + 1)
			}
			pc := cpuCounter{id: id, total: counter(), idle: counter(), iowait: counter(), steal: counter()}
			prevC = append(prevC, pc)
			// Mostly grown a little, in the same place.
			grow := func(v uint64) uint64 {
				if rng.IntN(20) == 0 {
					return counter()
				}
				return v + uint64(rng.IntN(1000))
			}
			curD = append(curD, devCounter{name: p.name, a: grow(p.a), b: grow(p.b), c: grow(p.c), d: grow(p.d)})
			curC = append(curC, cpuCounter{id: pc.id, total: grow(pc.total) + 3000, idle: grow(pc.idle), iowait: grow(pc.iowait), steal: grow(pc.steal)})
		}
		switch rng.IntN(6) { // now and then a list that changed
		case 0:
			if len(curD) > 1 {
				i, j := rng.IntN(len(curD)), rng.IntN(len(curD))
				curD[i], curD[j] = curD[j], curD[i]
				curC[i], curC[j] = curC[j], curC[i]
			}
		case 1:
			if len(curD) > 0 {
				curD, curC = curD[1:], curC[1:]
			}
		case 2:
			curD = append(curD, devCounter{name: "new", a: 1})
			curC = append(curC, cpuCounter{id: 99, total: 1})
		}
		gd, gok := deltas(prevD, curD)
		wd, wok := deltasByName(prevD, curD)
		if gd != wd || gok != wok {
			t.Fatalf("step %d: deltas %+v %v, want %+v %v\nprev %+v\ncur %+v", step, gd, gok, wd, wok, prevD, curD)
		}
		dt := float64(1 + rng.IntN(20))
		gb, gw, gs := cpuRates(prevC, curC, dt)
		wb, ww, ws := cpuRatesByID(prevC, curC, dt)
		if gb != wb || gw != ww || gs != ws {
			t.Fatalf("step %d: cpuRates %v %v %v, want %v %v %v\nprev %+v\ncur %+v", step, gb, gw, gs, wb, ww, ws, prevC, curC)
		}
	}
}
