"""The media store (a local folder, or S3 through a boto3 client), its key layout and the one sha256
helper: plain Python below the cores, which the Dagster resource in `defs/resources/` only builds."""
