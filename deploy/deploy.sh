#!/usr/bin/env bash
# One-command deploy of OMC to AWS ECS: `deploy/deploy.sh staging|production`.
#
#   1. build the image (Dockerfile) tagged with the commit, push it to the environment's ECR
#   2. migrate: run the `migrate` task (`omc db upgrade`) with the new image; stop on failure
#   3. roll out: `terraform apply -var image_tag=<commit>` (new task definitions; ECS
#      replaces the tasks, its circuit breaker undoes a rollout whose tasks do not start)
#   4. wait until every service is stable and `GET /ready` answers 200 through the ALB
#   5. on any failure after step 3: apply the previous image tag again (roll back) and exit 1
#
# Needs: aws (v2), docker, terraform, jq, curl; AWS credentials of the target account;
# `envs/<env>/backend.hcl` (S3 bucket + lock table) and `envs/<env>/terraform.tfvars`
# (certificate_arn, alarm_emails). Secrets are never passed here: they live in Secrets Manager.
set -euo pipefail

env="${1:?usage: deploy/deploy.sh staging|production}"
case "$env" in staging|production) ;; *) echo "unknown environment $env" >&2; exit 2 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
tf="$root/deploy/terraform/envs/$env"
tag="$(git -C "$root" rev-parse --short=12 HEAD)"
[ -z "$(git -C "$root" status --porcelain)" ] || { echo "commit your changes first" >&2; exit 2; }

log() { printf '\n=== %s\n' "$*"; }
tfo() { terraform -chdir="$tf" output -raw "$1"; }

log "terraform init ($env)"
terraform -chdir="$tf" init -input=false -backend-config=backend.hcl >/dev/null
previous="$(terraform -chdir="$tf" show -json | jq -r '
  [.values.root_module.child_modules[]? | .. | objects | select(.type? == "aws_ecs_task_definition")
   | .values.container_definitions | fromjson | .[0].image] | first // empty' | sed 's/.*://')"
repo="$(tfo repository_url)"
cluster="$(tfo cluster_name)"

log "build and push $repo:$tag"
aws ecr get-login-password | docker login --username AWS --password-stdin "${repo%%/*}"
docker build -t "$repo:$tag" "$root"
docker push "$repo:$tag"

apply() {  # apply TAG [terraform options…]
  local image="$1"
  shift
  terraform -chdir="$tf" apply -input=false -auto-approve -var "image_tag=$image" "$@"
}

rollback() {
  if [ -n "$previous" ] && [ "$previous" != "$tag" ]; then
    log "rolling back to $previous"
    apply "$previous" || echo "ROLLBACK FAILED: fix by hand (docs/operations.md)" >&2
  fi
  exit 1
}

log "migrate (omc db upgrade, image $tag)"
# only the migrate task definition moves to the new image before the schema is upgraded
apply "$tag" -target='module.omc.module.ecs.aws_ecs_task_definition.this["migrate"]' >/dev/null
subnets="$(terraform -chdir="$tf" output -json private_subnet_ids | jq -r 'join(",")')"
group="$(tfo tasks_security_group_id)"
task="$(aws ecs run-task --cluster "$cluster" --launch-type FARGATE \
  --task-definition "$(tfo migrate_task_definition)" \
  --network-configuration "awsvpcConfiguration={subnets=[$subnets],securityGroups=[$group],assignPublicIp=DISABLED}" \
  --query 'tasks[0].taskArn' --output text)"
aws ecs wait tasks-stopped --cluster "$cluster" --tasks "$task"
code="$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task" \
  --query 'tasks[0].containers[?name==`omc`].exitCode | [0]' --output text)"
[ "$code" = "0" ] || { echo "migration failed (exit $code): nothing rolled out" >&2; exit 1; }

log "roll out $tag"
apply "$tag" || rollback

log "wait for the services and /ready"
aws ecs wait services-stable --cluster "$cluster" --services api scheduler worker || rollback
url="$(tfo api_url)"
for _ in $(seq 1 30); do
  if curl -fsS --max-time 10 "$url/ready" >/dev/null; then
    log "deployed $tag to $env ($url)"
    exit 0
  fi
  sleep 10
done
echo "$url/ready did not answer 200" >&2
rollback
