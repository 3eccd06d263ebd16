// Package layering has no code of its own: its tests keep the dependency
// direction of the architecture notes (appliance → services/* → core →
// store) true, so the store's documents stay behind core, and keep every
// who-may-do-what decision in core (no admin checks elsewhere).
package layering
