"""Over-the-air updates of models and agent: A/B slots, signed releases, self-test, rollback.

`updater.Updater` runs the ``ota`` command (the state machine); `install` fetches a release
into the inactive slot; `trial` switches it in, self-tests it, keeps it on probation and makes
it final or rolls it back; `boot` settles what a restart interrupted; `slots` keeps the A/B
layout crash-safe; `download` fetches artifacts over HTTPS; `selftest` reads a release's sample
receipts. Manifests and signatures: `provisioning.release`, `provisioning.signing`.
"""
