"""The contract between the two programs: the gate box (`edge`) and the command centre (`centre`).

Everything both sides must agree on lives here, and nothing else of either program:

- every message on the wire as a pydantic model, bounded and validated the same way on both ends:
  `alert` (Alert), `panic` (PanicEvent, DeviceNotice), `messages` (Receipt and `receipt_for`,
  AckAlert, AlertState, ListAck, Heartbeat, Passage), built on the constrained types and the
  bounded JSON reader of `wire` and `bounded_json`;
- the MQTT topics (`topics`), the broker settings and the one way a client connects (`mqtt`);
- the Ed25519 envelope of what the centre signs (`signing`) and the list bundle codec (`bundle`);
- embedding metadata (`embedding`: which embedder made a vector, how wide it is), the plate
  grammar and normaliser (`plate_grammar`) and the list kinds (`lists`: what a list does, read by
  both programs from their config): lists are built at the centre and matched on the boxes;
- the plumbing both programs share: user-facing errors (`errors`), config files (`config_file`),
  logging (`logs`), private files and SQLite databases (`private`, `sqlite`).

Rules (pyproject.toml `[tool.importlinter]`, run by ./scripts/test and tests/test_layout.py): this
package imports nothing of ours outside itself, and of third-party packages only pydantic, numpy,
cryptography and paho-mqtt (MQTT is the wire); the box (`edge`) never imports `centre`; `centre`
imports of the box only this package (and, in `centre.embedding` alone, the box's photo embedder).
"""
