#!/usr/bin/env bash
# A fresh machine to the main job on the example catalog, with the embedded defaults
# (local Docker engine, local registry on 127.0.0.1:5000). Run as root from the repository.
#
# The main job: validate, plan and graph the catalog, build base/debian12 → runtime/llm:cpu →
# app/rag-api (the CUDA variant is large; build it with `imagefactory build runtime/llm:cuda`),
# test those three images, push them to the local dev registry, promote the app to preprod,
# verify its signed evidence there, and show where every image stands.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

# The local registry's credentials, for the variables imagefactory.yaml names (never printed).
export IMAGEFACTORY_REGISTRY_USER=imagefactory
IMAGEFACTORY_REGISTRY_PASSWORD="$(cat "${IMAGEFACTORY_HOST_DIR:-.host}/registry.password")"
export IMAGEFACTORY_REGISTRY_PASSWORD

imagefactory=.venv/bin/imagefactory
# The signing key pair (imagefactory.yaml: signing:). A real catalog commits its keys/cosign.pub
# and keeps the private key in a CI variable; the example makes its pair once per checkout, the
# private key (mode 0600) beside the registry password, never in the repository.
signing_key="${IMAGEFACTORY_HOST_DIR:-.host}/signing.key"
if [[ ! -f keys/cosign.pub ]]; then
    echo "==> imagefactory keygen (keys/cosign.pub; the private key in $signing_key)"
    mkdir -p keys "$(dirname "$signing_key")"
    "$imagefactory" keygen --public keys/cosign.pub --private "$signing_key"
fi
export IMAGEFACTORY_SIGNING_KEY="$signing_key"  # the path of the key file, not the key
echo "==> imagefactory validate"
"$imagefactory" validate
echo "==> imagefactory plan"
"$imagefactory" plan
echo "==> imagefactory graph"
"$imagefactory" graph
echo "==> imagefactory build app/rag-api (and the ancestors it needs)"
"$imagefactory" build app/rag-api
echo "==> imagefactory test (the images just built; JUnit report in .imagefactory/junit.xml)"
"$imagefactory" test base/debian12 runtime/llm:cpu app/rag-api --junit .imagefactory/junit.xml
# The example's GitOps repository (gitops.yaml: repo_url) is a local bare repository: lay it out once.
gitops_remote=.host/gitops.git
if [[ ! -d $gitops_remote ]]; then
    echo "==> imagefactory gitops init (a local GitOps repository in $gitops_remote)"
    git init --quiet --bare --initial-branch=main "$gitops_remote"
    checkout="$(mktemp -d)"
    git clone --quiet "$gitops_remote" "$checkout" 2>/dev/null
    "$imagefactory" gitops init "$checkout"
    git -C "$checkout" add -A
    git -C "$checkout" -c user.name=imagefactory -c user.email=imagefactory@localhost \
        commit --quiet -m "GitOps layout of the example catalog"
    git -C "$checkout" push --quiet origin HEAD:main
    rm -rf "$checkout"
fi
echo "==> imagefactory push (semver tags, by digest, to the dev registry; pinned in dev's GitOps overlay)"
"$imagefactory" push base/debian12 runtime/llm:cpu app/rag-api
echo "==> imagefactory promote app/rag-api --to preprod (the tested digest, copied, not rebuilt; pinned in GitOps)"
"$imagefactory" promote app/rag-api --to preprod
echo "==> imagefactory verify app/rag-api --env preprod (its signature and attestations, down to the base)"
"$imagefactory" verify app/rag-api --env preprod
echo "==> imagefactory status"
"$imagefactory" status
