package adapter

import "github.com/piot-appliance/piot/services/adapter/protocol"

// The adapter's tests speak the protocol as devices do: they encrypt
// packets and read the answer envelope.

type answer = protocol.Answer

func encryptECB(key, plain []byte) ([]byte, error) { return protocol.EncryptECB(key, plain) }
