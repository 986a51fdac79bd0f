package fleet

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Filter is a compiled dashboard filter: words that must all match. Compile
// it once per filter, not once per guest: a regular expression costs far
// more to compile than to run.
type Filter struct {
	words []filterWord
}

type filterWord struct {
	neg   bool
	match func(*Guest) bool
}

// CompileFilter reads a dashboard filter. Each blank-separated word must
// match:
//
//   - tag:X, host:Y, state:Z (a prefix of the state's name, so "state:fro"
//     finds frozen guests), as before;
//   - re:REGEXP, a Go regular expression (RE2: no backtracking, so time
//     linear in the name) searched in the name and, as a glob is, the
//     domain: "re:^web-\d+$";
//   - ~WORD, a fuzzy (fzf-style) match on the name: WORD's letters in
//     order, anything between ("~wb3" finds web-03), ignoring case;
//   - a glob against the name (or the domain, as in Select);
//   - hostname:X, os:X, ip:X: what the agent reports (hostname, OS pretty
//     name, id or kernel release, the start of an IP address), matched only
//     when a word names it, so a guest cannot put itself into a filter;
//   - otherwise a case-insensitive substring of the name (HOST/DOMAIN for
//     a discovered guest), host, address, state or a tag, or the start
//     (eight characters at least) of the UUID.
//
// A word starting with ! matches the guests the rest does not: "!web",
// "!state:ready", "!re:-0\d$". A word with nothing after its prefix ("!",
// "re:", "~": half typed) matches every guest.
//
// The error names the word: a state: word no state starts with, or a re:
// word that is no regular expression.
func CompileFilter(filter string) (*Filter, error) {
	f := &Filter{}
	for word := range strings.FieldsSeq(filter) {
		w, err := compileWord(word)
		if err != nil {
			return nil, err
		}
		if w.match != nil {
			f.words = append(f.words, w)
		}
	}
	return f, nil
}

// Match reports whether g passes every word of f.
func (f *Filter) Match(g *Guest) bool {
	for _, w := range f.words {
		if w.match(g) == w.neg {
			return false
		}
	}
	return true
}

// compileWord compiles one word; a nil match means the word tests nothing.
func compileWord(word string) (filterWord, error) {
	var w filterWord
	for strings.HasPrefix(word, "!") {
		w.neg, word = !w.neg, word[1:]
	}
	if word == "" {
		return filterWord{}, nil
	}
	if rest, ok := strings.CutPrefix(word, "~"); ok {
		if rest == "" {
			return filterWord{}, nil
		}
		w.match = func(g *Guest) bool { return FuzzyMatch(g.Name, rest) }
		return w, nil
	}
	prefix, val, ok := strings.Cut(word, ":")
	if ok && val == "" && slices.Contains([]string{"tag", "host", "state", "uuid", "hostname", "os", "ip"}, prefix) {
		return filterWord{}, nil // "tag:" as typed, before its value: everything still
	}
	if ok && prefix == "re" {
		if val == "" {
			return filterWord{}, nil
		}
		re, err := compileNameRegexp(word, val)
		if err != nil {
			return filterWord{}, err
		}
		w.match = re.matchName
		return w, nil
	}
	if ok && prefix == "state" &&
		!slices.ContainsFunc(States, func(st State) bool { return strings.HasPrefix(string(st), strings.ToLower(val)) }) {
		return filterWord{}, unknownState(word, val)
	}
	w.match = func(g *Guest) bool { return matchWord(g, word) }
	return w, nil
}

// maxRegexpLen bounds a re: pattern. RE2 runs in time linear in the input,
// but compiling a long pattern with counted repeats still costs memory.
const maxRegexpLen = 1024

// nameRegexp is a re: word: a regular expression on a guest's names.
type nameRegexp struct{ re *regexp.Regexp }

func compileNameRegexp(word, pattern string) (nameRegexp, error) {
	if len(pattern) > maxRegexpLen {
		return nameRegexp{}, fmt.Errorf("%q: regular expression longer than %d bytes", shortWord(word), maxRegexpLen)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		// regexp's error quotes the pattern again; its Code says what is wrong.
		var why string
		var se *syntax.Error
		if errors.As(err, &se) {
			why = se.Code.String()
			if se.Expr != "" && se.Expr != pattern {
				why += " at " + fmt.Sprintf("%q", se.Expr)
			}
		} else {
			why = err.Error()
		}
		return nameRegexp{}, fmt.Errorf("%q: bad regular expression: %s", shortWord(word), why)
	}
	return nameRegexp{re}, nil
}

// matchName searches the name and, as globName does, the domain.
func (r nameRegexp) matchName(g *Guest) bool {
	if r.re.MatchString(g.Name) {
		return true
	}
	dom := g.Domain()
	return dom != "" && dom != g.Name && r.re.MatchString(dom)
}

// shortWord keeps an error about a long word readable.
func shortWord(w string) string {
	const max = 40
	if len(w) <= max {
		return w
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(w[cut]) {
		cut--
	}
	return w[:cut] + "…"
}

// FuzzyMatch reports whether the letters of pattern occur in s in order,
// ignoring case (fzf's subsequence match without its scoring: the table
// keeps its own sort).
func FuzzyMatch(s, pattern string) bool {
	for _, p := range pattern {
		p = unicode.ToLower(p)
		for {
			c, n := utf8.DecodeRuneInString(s)
			if n == 0 {
				return false
			}
			s = s[n:]
			if unicode.ToLower(c) == p {
				break
			}
		}
	}
	return true
}
