package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"github.com/piot-appliance/piot/internal/fileutil"
	"go.yaml.in/yaml/v3"
)

// Update sets keys of the YAML file at path to values (the text the file
// would hold; "" removes the key), keeping every other key and comment.
// The result is validated before it replaces the file, so a bad value
// leaves the file as it was. A missing file is created.
func Update(path string, values map[string]string) error {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: not a mapping of keys", path)
	}
	known := map[string]bool{}
	for _, o := range (&Config{}).options() {
		known[o.name] = true
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		if !known[k] {
			return fmt.Errorf("unknown key %q", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := values[k]
		idx := -1
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == k {
				idx = i
			}
		}
		switch {
		case v == "" && idx >= 0:
			m.Content = append(m.Content[:idx], m.Content[idx+2:]...)
		case v == "":
		case idx >= 0:
			m.Content[idx+1] = &yaml.Node{Kind: yaml.ScalarNode, Value: v, Style: m.Content[idx+1].Style}
		default:
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	check := Default()
	if err := decodeYAML(path, out.Bytes(), check.options()); err != nil {
		return err
	}
	if err := check.Validate(); err != nil {
		return err
	}
	return fileutil.WriteFile(path, out.Bytes(), 0o600)
}
