#!/usr/bin/env bash
# Deploys demo-ml-service with kubectl alone (kustomize is built into kubectl). CI/CD calls it; so
# can a person with cluster access. The image is always given explicitly (a digest or an immutable
# tag): it is set through a throw-away kustomization on top of the overlay, so no tracked file
# changes and the same command renders exactly what gets applied.
#
#   deploy/deploy.sh render   ENV IMAGE   print the manifests of ENV (staging | prod | prod-canary)
#   deploy/deploy.sh apply    ENV IMAGE   apply ENV with IMAGE and wait for the rollout
#   deploy/deploy.sh canary   IMAGE       one production canary pod with IMAGE, next to the stable ones
#   deploy/deploy.sh uncanary             remove the canary (after the full rollout, or on rollback)
#   deploy/deploy.sh rollback ENV IMAGE   remove any canary; if ENV runs IMAGE, undo that rollout
#                                         (kubectl rollout undo) — a no-op when IMAGE never got there
#   deploy/deploy.sh image    ENV         print the image ENV runs now
#   deploy/deploy.sh verify   ENV TARGET [LOADTEST ARGS]   smoke test + SLO load test of TARGET
#        (deployment/NAME or service/NAME in ENV) through a kubectl port-forward, or of
#        $SERVICE_URL when set and TARGET is not the canary; exit 1 when the SLO is breached
#
# Environment: KUBECONFIG (cluster credentials), ROLLOUT_TIMEOUT (default 300s).
set -euo pipefail

APP="demo-ml-service"
BASE_IMAGE="ghcr.io/acme/demo-ml-service"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OVERLAYS="$HERE/k8s/overlays"
TIMEOUT="${ROLLOUT_TIMEOUT:-300s}"

die() { echo "deploy.sh: $*" >&2; exit 2; }

overlay() {
  [[ -f "$OVERLAYS/$1/kustomization.yaml" ]] || die "unknown environment '$1' (have: $(cd "$OVERLAYS" && printf '%s ' *))"
  echo "$OVERLAYS/$1"
}

# The namespace an overlay deploys to, as written in its kustomization.yaml.
namespace() {
  local ns
  ns="$(sed -n 's/^namespace:[[:space:]]*//p' "$(overlay "$1")/kustomization.yaml" | tr -d '"'"'"' ')"
  [[ -n "$ns" ]] || ns="$(sed -n 's/^namespace:[[:space:]]*//p' "$OVERLAYS/prod/kustomization.yaml" | tr -d '"'"'"' ')"
  echo "$ns"
}

# Writes a kustomization that layers IMAGE over overlay ENV; prints its directory.
layered() {
  local env="$1" image="$2" dir name ref
  [[ -n "$image" ]] || die "no image given"
  overlay "$env" >/dev/null
  if [[ "$image" == *@sha256:* ]]; then
    name="${image%@*}"; ref="  digest: ${image#*@}"
  elif [[ "${image##*/}" == *:* ]]; then
    name="${image%:*}"; ref="  newTag: \"${image##*:}\""
  else
    die "image '$image' has neither a tag nor a digest: deploy immutable references only"
  fi
  # Inside deploy/k8s: kustomize only accepts relative paths to other kustomizations.
  dir="$(mktemp -d "$HERE/k8s/.deploy-XXXXXX")"
  cat > "$dir/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../overlays/$env
images:
- name: $BASE_IMAGE
  newName: $name
$ref
YAML
  echo "$dir"
}

render() {
  local dir status=0; dir="$(layered "$1" "$2")"
  kubectl kustomize "$dir" || status=$?
  rm -rf "$dir"
  return "$status"
}

apply() {
  local env="$1" dir ns; dir="$(layered "$env" "$2")"; ns="$(namespace "$env")"
  local deployment="$APP"
  [[ "$env" == prod-canary ]] && deployment="$APP-canary"
  local status=0
  kubectl apply -k "$dir" || status=$?
  rm -rf "$dir"
  [[ "$status" -eq 0 ]] || return "$status"
  kubectl -n "$ns" annotate deployment "$deployment" --overwrite \
    kubernetes.io/change-cause="image $2${GITHUB_SHA:+ commit $GITHUB_SHA}${CI_COMMIT_SHA:+ commit $CI_COMMIT_SHA}"
  kubectl -n "$ns" rollout status deployment "$deployment" --timeout "$TIMEOUT"
}

uncanary() {
  kubectl -n "$(namespace prod-canary)" delete deployment,configmap \
    -l app.kubernetes.io/name="$APP",app.kubernetes.io/track=canary --ignore-not-found
  # The canary's ConfigMap carries no track label (generated); delete it by name prefix.
  kubectl -n "$(namespace prod-canary)" get configmap -o name | grep "^configmap/$APP-env-canary-" \
    | xargs -r kubectl -n "$(namespace prod-canary)" delete --ignore-not-found
}

rollback() {
  local env="$1" image="$2" ns running; ns="$(namespace "$env")"
  if [[ "$env" == prod ]]; then uncanary; fi
  running="$(current_image "$env" 2>/dev/null || true)"
  if [[ "$running" != "$image" ]]; then
    echo "deploy.sh: $env runs '${running:-nothing}', not $image: no rollout to undo"
    return 0
  fi
  kubectl -n "$ns" rollout undo deployment "$APP"
  kubectl -n "$ns" rollout status deployment "$APP" --timeout "$TIMEOUT"
  echo "deploy.sh: $env rolled back to $(current_image "$env")"
}

current_image() {
  kubectl -n "$(namespace "$1")" get deployment "$APP" -o jsonpath='{.spec.template.spec.containers[0].image}'
}

verify() {
  local env="$1" target="$2" url="${SERVICE_URL:-}" pf="" status=0; shift 2
  if [[ -z "$url" || "$target" == *-canary ]]; then
    local port="${VERIFY_PORT:-18000}"
    # The named port: a Deployment's container port, or the Service port, both called "http".
    kubectl -n "$(namespace "$env")" port-forward "$target" "$port:http" >/dev/null 2>&1 &
    pf=$!
    url="http://127.0.0.1:$port"
  fi
  uv run --frozen demo_ml_service loadtest --url "$url" --wait-ready 120 "$@" || status=$?
  if [[ -n "$pf" ]]; then kill "$pf" 2>/dev/null || true; wait "$pf" 2>/dev/null || true; fi
  return "$status"
}

command="${1:-}"; shift || true
case "$command" in
  render)   [[ $# -eq 2 ]] || die "usage: render ENV IMAGE"; render "$1" "$2" ;;
  apply)    [[ $# -eq 2 ]] || die "usage: apply ENV IMAGE"; apply "$1" "$2" ;;
  canary)   [[ $# -eq 1 ]] || die "usage: canary IMAGE"; apply prod-canary "$1" ;;
  uncanary) uncanary ;;
  rollback) [[ $# -eq 2 ]] || die "usage: rollback ENV IMAGE"; rollback "$1" "$2" ;;
  image)    [[ $# -eq 1 ]] || die "usage: image ENV"; current_image "$1" ;;
  verify)   [[ $# -ge 2 ]] || die "usage: verify ENV TARGET [LOADTEST ARGS]"; verify "$@" ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
