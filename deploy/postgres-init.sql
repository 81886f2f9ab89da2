-- Run once by the postgres image on an empty volume (deploy/compose.yaml): the platform's database,
-- beside Dagster's (POSTGRES_DB=dagster). `montage db upgrade` (the migrate service) fills it.
CREATE DATABASE montage OWNER montage;
