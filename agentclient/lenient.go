package agentclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// decodeLenient decodes the JSON value b into out (a non-nil pointer) the
// way every reply is decoded, and is the reference the hand-written decoders
// are checked against.
//
// b must be valid JSON, and its top level must have out's shape (an object
// for a struct, an array or null for a slice, a number for an integer, ...):
// otherwise the reply as a whole is wrong and this is an error. Below the
// top level a guest's mistake costs only what it touches: a member whose
// value does not fit its field (a number out of range, a fraction or a
// string where an integer goes, an array where an object goes) leaves that
// field zero, or nil for a pointer or slice; a list element that does not
// fit is dropped. encoding/json instead fails the whole reply for one such
// field, and leaves a mistyped pointer field pointing at a zero value.
//
// Keys match the json tags exactly (what the agent sends), unknown keys are
// ignored, and of a repeated key the last counts. Strings decode as
// encoding/json decodes them (invalid UTF-8 becomes U+FFFD).
func decodeLenient(b []byte, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decode into %T: want a non-nil pointer", out)
	}
	if err := json.Unmarshal(b, new(json.RawMessage)); err != nil {
		return err // syntax: the message says where
	}
	raw := bytes.TrimSpace(b)
	if !setLenient(rv.Elem(), raw) {
		return fmt.Errorf("return value %s does not fit %s", sample(raw), rv.Elem().Type())
	}
	return nil
}

// setLenient stores the valid JSON value raw in v if it fits, reporting
// whether it did; v is left as it was when it does not.
func setLenient(v reflect.Value, raw []byte) bool {
	null := string(raw) == "null"
	switch v.Kind() {
	case reflect.Pointer:
		if null {
			v.SetZero()
			return true
		}
		nv := reflect.New(v.Type().Elem())
		if !setLenient(nv.Elem(), raw) {
			return false
		}
		v.Set(nv)
		return true
	case reflect.Slice:
		if null {
			v.SetZero()
			return true
		}
		if v.Type().Elem().Kind() == reflect.Uint8 && raw[0] == '"' {
			// []byte is base64, as encoding/json reads it.
			var b []byte
			if json.Unmarshal(raw, &b) != nil {
				return false
			}
			v.SetBytes(b)
			return true
		}
		if raw[0] != '[' {
			return false
		}
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return false
		}
		out := reflect.MakeSlice(v.Type(), 0, len(elems))
		for _, e := range elems {
			ev := reflect.New(v.Type().Elem()).Elem()
			if setLenient(ev, e) {
				out = reflect.Append(out, ev)
			}
		}
		v.Set(out)
		return true
	case reflect.Struct:
		if raw[0] != '{' {
			return false
		}
		var members map[string]json.RawMessage
		if json.Unmarshal(raw, &members) != nil {
			return false
		}
		nv := reflect.New(v.Type()).Elem()
		for i := range nv.NumField() {
			name, ok := jsonName(v.Type().Field(i))
			if !ok {
				continue
			}
			if m, ok := members[name]; ok {
				setLenient(nv.Field(i), m) // a misfit stays zero
			}
		}
		v.Set(nv)
		return true
	case reflect.String:
		var s string
		if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return false
		}
		v.SetString(s)
		return true
	case reflect.Bool:
		switch string(raw) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return false
		}
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(string(raw), 10, 64) // no fraction, no exponent
		if err != nil || v.OverflowInt(n) {
			return false
		}
		v.SetInt(n)
		return true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil || v.OverflowUint(n) {
			return false
		}
		v.SetUint(n)
		return true
	case reflect.Float32, reflect.Float64:
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return false
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || v.OverflowFloat(f) {
			return false
		}
		v.SetFloat(f)
		return true
	case reflect.Interface:
		var x any
		if json.Unmarshal(raw, &x) != nil {
			return false
		}
		if x == nil {
			v.SetZero()
		} else {
			v.Set(reflect.ValueOf(x))
		}
		return true
	}
	return false
}

// jsonName is the key an exported struct field is decoded from: its json
// tag's name, or the field's name without one.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, true
}
