#!/bin/sh
# Create the lake bucket once MinIO is up; safe to run again.
set -eu
mc alias set lake "$S3_ENDPOINT" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
mc mb --ignore-existing "lake/$S3_BUCKET"
echo "bucket $S3_BUCKET ready at $S3_ENDPOINT"
