package core

import "github.com/piot-appliance/piot/services/store"

// Mapping between core's domain types and the store's bson documents. Only
// core converts: callers above it see the domain types alone. Sensor,
// Switch and SSHKey are struct conversions, which compile only while both
// sides have the same fields; Thing is mapped field by field, and
// mapping_test.go fails when a field of either side is not carried over.

func thingDoc(t *Thing) *store.Thing {
	return &store.Thing{
		ID:                    t.ID,
		PiotID:                t.PiotID,
		Name:                  t.Name,
		Description:           t.Description,
		Alias:                 t.Alias,
		Type:                  t.Type,
		Enabled:               t.Enabled,
		Created:               t.Created,
		OrgID:                 t.OrgID,
		ParentID:              t.ParentID,
		Available:             t.Available,
		LastSeen:              t.LastSeen,
		LastSeenInterval:      t.LastSeenInterval,
		Voltage:               t.Voltage,
		AvailabilityTopic:     t.AvailabilityTopic,
		AvailabilityYes:       t.AvailabilityYes,
		AvailabilityNo:        t.AvailabilityNo,
		TelemetryTopic:        t.TelemetryTopic,
		Telemetry:             t.Telemetry,
		StoreInfluxDB:         t.StoreInfluxDB,
		StoreMySQLDB:          t.StoreMySQLDB,
		StoreMySQLDBInterval:  t.StoreMySQLDBInterval,
		LocLat:                t.LocLat,
		LocLng:                t.LocLng,
		LocSat:                t.LocSat,
		LocTs:                 t.LocTs,
		LocMQTTTopic:          t.LocMQTTTopic,
		LocMQTTLatValue:       t.LocMQTTLatValue,
		LocMQTTLngValue:       t.LocMQTTLngValue,
		LocMQTTTsValue:        t.LocMQTTTsValue,
		LocMQTTSatValue:       t.LocMQTTSatValue,
		LocTracking:           t.LocTracking,
		AlarmActive:           t.AlarmActive,
		AlarmActivated:        t.AlarmActivated,
		BatteryLevel:          t.BatteryLevel,
		BatteryMQTTTopic:      t.BatteryMQTTTopic,
		BatteryMQTTLevelValue: t.BatteryMQTTLevelValue,
		BatteryLevelTracking:  t.BatteryLevelTracking,
		Sensor:                store.Sensor(t.Sensor),
		Switch:                store.Switch(t.Switch),
		AESKey:                t.AESKey,
		MQTTPassword:          t.MQTTPassword,
	}
}

func thingFromDoc(d *store.Thing) *Thing {
	return &Thing{
		ID:                    d.ID,
		PiotID:                d.PiotID,
		Name:                  d.Name,
		Description:           d.Description,
		Alias:                 d.Alias,
		Type:                  d.Type,
		Enabled:               d.Enabled,
		Created:               d.Created,
		OrgID:                 d.OrgID,
		ParentID:              d.ParentID,
		Available:             d.Available,
		LastSeen:              d.LastSeen,
		LastSeenInterval:      d.LastSeenInterval,
		Voltage:               d.Voltage,
		AvailabilityTopic:     d.AvailabilityTopic,
		AvailabilityYes:       d.AvailabilityYes,
		AvailabilityNo:        d.AvailabilityNo,
		TelemetryTopic:        d.TelemetryTopic,
		Telemetry:             d.Telemetry,
		StoreInfluxDB:         d.StoreInfluxDB,
		StoreMySQLDB:          d.StoreMySQLDB,
		StoreMySQLDBInterval:  d.StoreMySQLDBInterval,
		LocLat:                d.LocLat,
		LocLng:                d.LocLng,
		LocSat:                d.LocSat,
		LocTs:                 d.LocTs,
		LocMQTTTopic:          d.LocMQTTTopic,
		LocMQTTLatValue:       d.LocMQTTLatValue,
		LocMQTTLngValue:       d.LocMQTTLngValue,
		LocMQTTTsValue:        d.LocMQTTTsValue,
		LocMQTTSatValue:       d.LocMQTTSatValue,
		LocTracking:           d.LocTracking,
		AlarmActive:           d.AlarmActive,
		AlarmActivated:        d.AlarmActivated,
		BatteryLevel:          d.BatteryLevel,
		BatteryMQTTTopic:      d.BatteryMQTTTopic,
		BatteryMQTTLevelValue: d.BatteryMQTTLevelValue,
		BatteryLevelTracking:  d.BatteryLevelTracking,
		Sensor:                Sensor(d.Sensor),
		Switch:                Switch(d.Switch),
		AESKey:                d.AESKey,
		MQTTPassword:          d.MQTTPassword,
	}
}

func sshKeysFromDocs(ds []store.SSHKey) []SSHKey {
	if ds == nil {
		return nil
	}
	out := make([]SSHKey, len(ds))
	for i, d := range ds {
		out[i] = SSHKey(d)
	}
	return out
}

func sshKeyDoc(k SSHKey) store.SSHKey { return store.SSHKey(k) }
