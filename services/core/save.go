package core

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
)

// diff returns the update that turns old into new: changed top-level
// fields are $set, fields that disappear (omitempty) are $unset. Writing
// only what changed keeps concurrent writers of other fields (ingest) safe.
func diff(old, new any) (bson.D, error) {
	o, err := toMap(old)
	if err != nil {
		return nil, err
	}
	n, err := toMap(new)
	if err != nil {
		return nil, err
	}
	var set, unset bson.D
	for k, v := range n {
		if ov, ok := o[k]; !ok || !reflect.DeepEqual(ov, v) {
			set = append(set, bson.E{Key: k, Value: v})
		}
	}
	for k := range o {
		if _, ok := n[k]; !ok {
			unset = append(unset, bson.E{Key: k, Value: ""})
		}
	}
	var upd bson.D
	if len(set) > 0 {
		upd = append(upd, bson.E{Key: "$set", Value: set})
	}
	if len(unset) > 0 {
		upd = append(upd, bson.E{Key: "$unset", Value: unset})
	}
	return upd, nil
}

func toMap(v any) (bson.M, error) {
	raw, err := bson.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal: %w", err)
	}
	var m bson.M
	if err := bson.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("unmarshal: %w", err)
	}
	return m, nil
}

// update writes the difference between old and new to the repository.
func update[T any](ctx context.Context, r store.Repo[T], id ID, old, new *T, what string) error {
	upd, err := diff(old, new)
	if err != nil {
		return internal("error while updating "+what, err)
	}
	if len(upd) == 0 {
		return nil
	}
	return storeErr(r.Update(ctx, id, upd), what)
}

// saveThing writes the difference between two versions of a thing, as
// the store's documents so that the update names their bson fields.
func (c *Core) saveThing(ctx context.Context, old, new *Thing, what string) error {
	return update(ctx, c.st.Things, new.ID, thingDoc(old), thingDoc(new), what)
}

// storeErr maps store errors to domain errors.
func storeErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrDuplicate):
		return &Error{Code: CodeConflict, Msg: duplicateMsg(err, what), Err: err}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Code: CodeNotFound, Msg: what + " does not exist", Err: err}
	default:
		return internal("error while writing "+what, err)
	}
}

// duplicateMsg names the field whose unique index refused a write; what
// ("Org", "Thing", ...) names the document when that is its name.
func duplicateMsg(err error, what string) string {
	switch store.DuplicateIndex(err) {
	case store.IndexEmail:
		return "User of such email already exists"
	case store.IndexMQTTUsername:
		return "this MQTT username is used by another organization"
	case store.IndexPiotID:
		return "Thing of such piotId already exists"
	case store.IndexMembership:
		return "User is already assigned to given organization"
	}
	return what + " of such name already exists"
}
