"""Over-the-air updates of models and agent: A/B slots, signed releases, self-test, rollback.

`updater.Updater` runs the ``ota`` command and the trial of a new release; `slots` keeps the
A/B layout crash-safe; `download` fetches artifacts over HTTPS; `selftest` reads a release's
sample receipts. Manifests and signatures: `provisioning.release`, `provisioning.signing`.
"""
