#!/usr/bin/env bash
# A fresh machine to the main job on the example catalog, with the embedded defaults
# (local Docker engine, local registry on 127.0.0.1:5000). Run as root from the repository.
#
# Today the main job reads the catalog: validate, plan, graph. Later steps (build, test, push,
# promote) join this script as they land.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

imagefactory=.venv/bin/imagefactory
echo "==> imagefactory validate"
"$imagefactory" validate
echo "==> imagefactory plan"
"$imagefactory" plan
echo "==> imagefactory graph"
"$imagefactory" graph
