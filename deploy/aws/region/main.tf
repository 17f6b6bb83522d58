# One region of a bftlab cluster: instances, a security group open to the committee's
# ports only from the cluster's own instances, and SSH only from the operator.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "region" {
  type = string
}
variable "instances" {
  description = "Instances in this region."
  type        = number
}
variable "instance_type" {
  type = string
}
variable "ssh_public_key" {
  description = "The operator's SSH public key (the text of a .pub file)."
  type        = string
}
variable "operator_cidr" {
  description = "The only address range SSH is open to."
  type        = string
}
variable "name" {
  description = "Name prefix (carries the run id)."
  type        = string
}
variable "base_port" {
  type = number
}
variable "port_count" {
  description = "UDP ports of the committee from base_port (1 + 2 x workers per node), plus metrics."
  type        = number
}
variable "peer_ips" {
  description = "Public addresses of every instance of the cluster, in every region."
  type        = list(string)
}
variable "monitor_port" {
  type = number
}

# Ubuntu 24.04 LTS (Canonical's images).
data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"]
  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }
}

resource "aws_key_pair" "operator" {
  key_name_prefix = "${var.name}-"
  public_key      = var.ssh_public_key
}

resource "aws_security_group" "cluster" {
  name_prefix = "${var.name}-"
  description = "bftlab: SSH from the operator, the committee's ports between instances"

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.cluster.id
  description       = "SSH from the operator"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.operator_cidr
}

# QUIC between the instances (nodes, workers, clients), one rule per peer. These depend
# on the other regions' instances only, so Terraform creates them after every instance.
resource "aws_vpc_security_group_ingress_rule" "committee" {
  for_each          = toset(var.peer_ips)
  security_group_id = aws_security_group.cluster.id
  description       = "bftlab committee ports from a cluster instance"
  ip_protocol       = "udp"
  from_port         = var.base_port
  to_port           = var.base_port + var.port_count - 1
  cidr_ipv4         = "${each.value}/32"
}

# Node metrics (TCP) and Prometheus, scraped from inside the cluster only.
resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each          = toset(var.peer_ips)
  security_group_id = aws_security_group.cluster.id
  description       = "bftlab metrics from a cluster instance"
  ip_protocol       = "tcp"
  from_port         = var.base_port
  to_port           = var.base_port + var.port_count - 1
  cidr_ipv4         = "${each.value}/32"
}

resource "aws_vpc_security_group_ingress_rule" "prometheus" {
  security_group_id = aws_security_group.cluster.id
  description       = "Prometheus from the operator"
  ip_protocol       = "tcp"
  from_port         = var.monitor_port
  to_port           = var.monitor_port
  cidr_ipv4         = var.operator_cidr
}

resource "aws_instance" "host" {
  count                  = var.instances
  ami                    = data.aws_ami.ubuntu.id
  instance_type          = var.instance_type
  key_name               = aws_key_pair.operator.key_name
  vpc_security_group_ids = [aws_security_group.cluster.id]

  root_block_device {
    volume_size = 40
    volume_type = "gp3"
  }

  tags = {
    Name = "${var.name}-${var.region}-${count.index}"
  }
}

output "hosts" {
  value = [
    for i, h in aws_instance.host : {
      name       = "${var.name}-${var.region}-${i}"
      public_ip  = h.public_ip
      private_ip = h.private_ip
      region     = var.region
    }
  ]
}
