"""The Raspberry Pi display: render (decision → 8×8 pixels, pure), app (the state
machine), displays (Sense HAT, emulator, terminal, recorder) and runner (MQTT)."""
