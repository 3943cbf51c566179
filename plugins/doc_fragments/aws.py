# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the modules that change AWS reach the EC2 API (the argument spec is
module_utils/fix/security_group.AWS_CONNECTION_SPEC)."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  region:
    description: The AWS region; default from the environment (C(AWS_REGION)) or the shared config.
    type: str
    aliases: [aws_region, ec2_region]
  profile:
    description: A profile of the shared credentials/config files.
    type: str
    aliases: [aws_profile]
  access_key:
    description: AWS access key id; default from boto3's usual chain.
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description: AWS secret access key.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description: AWS session token.
    type: str
    aliases: [aws_session_token, security_token]
  endpoint_url:
    description: Another EC2 endpoint (a test server, a VPC endpoint).
    type: str
    aliases: [aws_endpoint_url, ec2_url]
  retries:
    description: How many times a throttled call is retried.
    type: int
    default: 4
"""
