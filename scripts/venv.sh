# Sourced by scripts/with-emulator.sh and scripts/serve-emulator: installs the pinned test tools
# (scripts/requirements-test.txt: the emulator, boto3, cfn-lint) into .venv, once per pin change.
if [ ! -x .venv/bin/python ] || ! cmp -s scripts/requirements-test.txt .venv/requirements-test.txt; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt .venv/requirements-test.txt
fi
