// Package layering has no code of its own: its test keeps the dependency
// direction of the architecture notes (appliance → services/* → core →
// store) true, so the store's documents stay behind core.
package layering
