package core

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/piot-appliance/piot/services/store"
)

// fill sets every field reachable from v to a distinct non-zero value
// (slices get two elements), so a mapping that drops or swaps a field
// changes the value after a round trip. A kind it does not know fails the
// test rather than leave a field zero.
func fill(t *testing.T, v reflect.Value, path string, n *int) {
	t.Helper()
	*n++
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !v.Field(i).CanSet() {
				t.Fatalf("fill: %s.%s is not settable", path, f.Name)
			}
			fill(t, v.Field(i), path+"."+f.Name, n)
		}
	case reflect.String:
		v.SetString(fmt.Sprintf("%s#%d", path, *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n%100 + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i), fmt.Sprintf("%s[%d]", path, i), n)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range s.Len() {
			fill(t, s.Index(i), fmt.Sprintf("%s[%d]", path, i), n)
		}
		v.Set(s)
	default:
		t.Fatalf("fill: %s has kind %s, teach fill about it", path, v.Kind())
	}
}

func filled[T any](t *testing.T) T {
	t.Helper()
	var v T
	n := 0
	fill(t, reflect.ValueOf(&v).Elem(), reflect.TypeOf(v).Name(), &n)
	return v
}

// TestMappingRoundTrips catches a field added to a domain type or to its
// store document but not mapped: it would come back zero.
func TestMappingRoundTrips(t *testing.T) {
	t.Run("Thing from core", func(t *testing.T) {
		want := filled[Thing](t)
		if got := *thingFromDoc(thingDoc(&want)); !reflect.DeepEqual(got, want) {
			t.Errorf("core -> store -> core changed the thing:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("Thing from store", func(t *testing.T) {
		want := filled[store.Thing](t)
		if got := *thingDoc(thingFromDoc(&want)); !reflect.DeepEqual(got, want) {
			t.Errorf("store -> core -> store changed the thing:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("SSHKey from core", func(t *testing.T) {
		want := []SSHKey{filled[SSHKey](t), filled[SSHKey](t)}
		want[1].Comment = "second"
		docs := []store.SSHKey{sshKeyDoc(want[0]), sshKeyDoc(want[1])}
		if got := sshKeysFromDocs(docs); !reflect.DeepEqual(got, want) {
			t.Errorf("core -> store -> core changed the keys:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("SSHKey from store", func(t *testing.T) {
		want := filled[store.User](t).SSHKeys
		var got []store.SSHKey
		for _, k := range sshKeysFromDocs(want) {
			got = append(got, sshKeyDoc(k))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("store -> core -> store changed the keys:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("nil keys stay nil", func(t *testing.T) {
		if got := sshKeysFromDocs(nil); got != nil {
			t.Errorf("got %#v", got)
		}
	})
}
