# A bftlab cluster on AWS: N instances spread over chosen regions, for `bftlab remote`.
# Compatible with OpenTofu. Every resource is tagged with the run id and an expiry.
#
#   terraform init
#   terraform apply -var run_id=bench1 -var expires_at=2026-12-05T06:00:00Z \
#     -var operator_cidr=$(curl -s https://checkip.amazonaws.com)/32 \
#     -var 'instances={"us-east-1"=2,"eu-west-1"=1,"ap-southeast-1"=1}'
#   terraform output -json > output.json
#   bftlab remote inventory --from-terraform output.json --identity ~/.ssh/id_ed25519
#   ...
#   terraform destroy -var run_id=bench1 -var expires_at=...    (when done)
#
# Terraform cannot create providers in a loop, so each supported region has a provider
# block and a module call below; a region with 0 instances creates nothing. Add a region
# by copying both.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }
}

variable "run_id" {
  description = "Names and tags every resource (letters, digits, dashes)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9-]{1,24}$", var.run_id))
    error_message = "run_id: 1-24 lower-case letters, digits and dashes."
  }
}
variable "expires_at" {
  description = "When the cluster may be destroyed (RFC 3339), tagged on every resource for a janitor."
  type        = string
  validation {
    condition     = can(formatdate("YYYY", var.expires_at))
    error_message = "expires_at must be an RFC 3339 time, e.g. 2026-12-05T06:00:00Z."
  }
}
variable "instances" {
  description = "Instances per region (regions of harness/matrices/aws-2017.csv)."
  type        = map(number)
  default     = { "us-east-1" = 1, "us-west-1" = 1, "eu-west-1" = 1, "ap-southeast-1" = 1 }
}
variable "instance_type" {
  type    = string
  default = "c5.xlarge"
}
variable "ssh_public_key_file" {
  type    = string
  default = "~/.ssh/id_ed25519.pub"
}
variable "operator_cidr" {
  description = "Your address as a /32: the only source SSH and Prometheus accept."
  type        = string
}
variable "base_port" {
  description = "bftlab remote run --base-port."
  type        = number
  default     = 7000
}
variable "port_count" {
  description = "Ports opened from base_port: 3 per node with one worker (1 + 2 x workers), plus --metrics-port if it follows them."
  type        = number
  default     = 1000
}
variable "monitor_port" {
  type    = number
  default = 9095
}

locals {
  name = "bftlab-${var.run_id}"
  tags = {
    "bftlab:run-id"     = var.run_id
    "bftlab:expires-at" = var.expires_at
  }
  key  = file(pathexpand(var.ssh_public_key_file))
  all_peers = concat(
    [for h in module.us_east_1.hosts : h.public_ip],
    [for h in module.us_west_1.hosts : h.public_ip],
    [for h in module.eu_west_1.hosts : h.public_ip],
    [for h in module.ap_southeast_1.hosts : h.public_ip],
    [for h in module.ap_northeast_1.hosts : h.public_ip],
  )
}

provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
  default_tags { tags = local.tags }
}
provider "aws" {
  alias  = "us_west_1"
  region = "us-west-1"
  default_tags { tags = local.tags }
}
provider "aws" {
  alias  = "eu_west_1"
  region = "eu-west-1"
  default_tags { tags = local.tags }
}
provider "aws" {
  alias  = "ap_southeast_1"
  region = "ap-southeast-1"
  default_tags { tags = local.tags }
}
provider "aws" {
  alias  = "ap_northeast_1"
  region = "ap-northeast-1"
  default_tags { tags = local.tags }
}

module "us_east_1" {
  source         = "./region"
  providers      = { aws = aws.us_east_1 }
  region         = "us-east-1"
  instances      = lookup(var.instances, "us-east-1", 0)
  instance_type  = var.instance_type
  ssh_public_key = local.key
  operator_cidr  = var.operator_cidr
  name           = local.name
  base_port      = var.base_port
  port_count     = var.port_count
  monitor_port   = var.monitor_port
  peer_ips       = local.all_peers
}
module "us_west_1" {
  source         = "./region"
  providers      = { aws = aws.us_west_1 }
  region         = "us-west-1"
  instances      = lookup(var.instances, "us-west-1", 0)
  instance_type  = var.instance_type
  ssh_public_key = local.key
  operator_cidr  = var.operator_cidr
  name           = local.name
  base_port      = var.base_port
  port_count     = var.port_count
  monitor_port   = var.monitor_port
  peer_ips       = local.all_peers
}
module "eu_west_1" {
  source         = "./region"
  providers      = { aws = aws.eu_west_1 }
  region         = "eu-west-1"
  instances      = lookup(var.instances, "eu-west-1", 0)
  instance_type  = var.instance_type
  ssh_public_key = local.key
  operator_cidr  = var.operator_cidr
  name           = local.name
  base_port      = var.base_port
  port_count     = var.port_count
  monitor_port   = var.monitor_port
  peer_ips       = local.all_peers
}
module "ap_southeast_1" {
  source         = "./region"
  providers      = { aws = aws.ap_southeast_1 }
  region         = "ap-southeast-1"
  instances      = lookup(var.instances, "ap-southeast-1", 0)
  instance_type  = var.instance_type
  ssh_public_key = local.key
  operator_cidr  = var.operator_cidr
  name           = local.name
  base_port      = var.base_port
  port_count     = var.port_count
  monitor_port   = var.monitor_port
  peer_ips       = local.all_peers
}
module "ap_northeast_1" {
  source         = "./region"
  providers      = { aws = aws.ap_northeast_1 }
  region         = "ap-northeast-1"
  instances      = lookup(var.instances, "ap-northeast-1", 0)
  instance_type  = var.instance_type
  ssh_public_key = local.key
  operator_cidr  = var.operator_cidr
  name           = local.name
  base_port      = var.base_port
  port_count     = var.port_count
  monitor_port   = var.monitor_port
  peer_ips       = local.all_peers
}

output "hosts" {
  description = "Every instance: name, public_ip, private_ip, region (bftlab remote inventory --from-terraform reads this)."
  value = concat(
    module.us_east_1.hosts,
    module.us_west_1.hosts,
    module.eu_west_1.hosts,
    module.ap_southeast_1.hosts,
    module.ap_northeast_1.hosts,
  )
}
output "ssh_user" {
  value = "ubuntu"
}
output "run_id" {
  value = var.run_id
}
output "expires_at" {
  value = var.expires_at
}
