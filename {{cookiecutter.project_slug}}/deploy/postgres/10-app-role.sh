#!/usr/bin/env bash
# Run once by the postgres image when its volume is first initialised: create the
# service's login and hand it the database. It is deliberately not a superuser: loom
# refuses to serve an external schema through one.
set -euo pipefail

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set app_user="$APP_DB_USER" --set app_password="$APP_DB_PASSWORD" \
  --set app_db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
ALTER DATABASE :"app_db" OWNER TO :"app_user";
ALTER SCHEMA public OWNER TO :"app_user";
SQL
