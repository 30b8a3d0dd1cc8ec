-- sql/roles/roles.sql — least-privilege roles for sluice. NOT a migration: `sluiced migrate` does
-- not run it (it reads only sql/NNN_*.sql). Run it as a superuser or the tables' owner, after the
-- migrations, and again whenever the configured tables change (it is idempotent):
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 \
--        -c "SET sluice.ingest_tables = 'sensor_readings,flux.mg_meter_readings'" \
--        -c "SET sluice.policy_tables = 'sensor_readings'" \
--        -f sql/roles/roles.sql
--   psql "$ADMIN_URL" -c "CREATE ROLE sluice_writer LOGIN PASSWORD '…' IN ROLE sluice_ingest"
--
-- Settings (custom session settings, read with current_setting(); table names as in the config's
-- tables[].name: "table" = public.table, or "schema.table", case-sensitive, comma-separated):
--   sluice.ingest_tables       required: the tables sluiced writes (tables[].name)
--   sluice.ignore_tables       of those, the ones with conflict "ignore" (staged: also SELECT)
--   sluice.update_tables       of those, the ones with conflict "update" (staged: also SELECT, UPDATE)
--   sluice.dead_letter_table   default sluice_dead_letter (sql/006_dead_letter.sql)
--   sluice.resolver_tables     registry tables the resolvers read and add to (SELECT, INSERT)
--   sluice.policy_tables       the tables with a timeseries block, managed by the policy role
--
-- sluice_ingest (NOLOGIN; grant it to the login role in database.url):
--   INSERT on the ingest tables and the dead-letter table; USAGE on the sequences their column
--   defaults and identity columns use; USAGE on their schemas; SELECT, INSERT on the resolver
--   tables. Nothing else: no SELECT (except staged tables), no UPDATE (except conflict "update"),
--   no DELETE, TRUNCATE, DROP or DDL. The catalog (pg_catalog) is readable by every role already;
--   the writers' staging tables are TEMP tables (the database's TEMP privilege, PUBLIC by default).
--   Foreign keys are checked with the referenced table owner's rights: no grant on those tables.
-- sluice_policy (NOLOGIN; for `sluiced policy apply` or a daemon with the policy manager on):
--   becomes the owner of the policy tables (TimescaleDB's add_*_policy, compression settings,
--   partitions and continuous aggregates all need the owner) and gets CREATE on their schemas
--   (aggregate views, summary tables, partitions); it is given sluice_ingest's rights too.
--   Ownership of a table in a schema owned by someone else lets it change only that table.
DO $roles$
DECLARE
  ingest text := coalesce(current_setting('sluice.ingest_tables', true), '');
  ignore_list text := coalesce(current_setting('sluice.ignore_tables', true), '');
  update_list text := coalesce(current_setting('sluice.update_tables', true), '');
  dead_letter text := coalesce(nullif(current_setting('sluice.dead_letter_table', true), ''), 'sluice_dead_letter');
  resolvers text := coalesce(current_setting('sluice.resolver_tables', true), '');
  policy text := coalesce(current_setting('sluice.policy_tables', true), '');
  v_name text;
  v_sch text;
  v_rel text;
  v_oid oid;
  v_seq regclass;
BEGIN
  IF btrim(ingest) = '' THEN
    RAISE EXCEPTION 'sluice.ingest_tables is not set'
      USING HINT = 'SET sluice.ingest_tables = ''table,schema.table'' before running roles.sql';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice_ingest') THEN
    CREATE ROLE sluice_ingest NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice_policy') THEN
    CREATE ROLE sluice_policy NOLOGIN;
  END IF;

  -- Every list entry, resolved exactly as sluiced resolves tables[].name.
  CREATE TEMP TABLE sluice_roles_wanted (kind text, name text, sch text, rel text, oid_ oid) ON COMMIT DROP;
  INSERT INTO sluice_roles_wanted (kind, name)
    SELECT l.kind, btrim(x)
    FROM (VALUES ('ingest', ingest), ('ignore', ignore_list), ('update', update_list), ('dead_letter', dead_letter),
                 ('resolver', resolvers), ('policy', policy)) AS l(kind, list),
         unnest(string_to_array(l.list, ',')) AS x
    WHERE btrim(x) <> '';
  UPDATE sluice_roles_wanted
     SET sch = CASE WHEN position('.' IN name) > 0 THEN split_part(name, '.', 1) ELSE 'public' END,
         rel = CASE WHEN position('.' IN name) > 0 THEN substr(name, position('.' IN name) + 1) ELSE name END;
  UPDATE sluice_roles_wanted w SET oid_ = c.oid
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = w.sch AND c.relname = w.rel AND c.relkind IN ('r', 'p');
  FOR v_name IN SELECT w.kind || ' table "' || w.name || '"' FROM sluice_roles_wanted w WHERE w.oid_ IS NULL LOOP
    RAISE EXCEPTION '% does not exist', v_name;
  END LOOP;
  FOR v_name IN SELECT w.name FROM sluice_roles_wanted w
               WHERE w.kind IN ('ignore', 'update')
                 AND NOT EXISTS (SELECT FROM sluice_roles_wanted i WHERE i.kind = 'ingest' AND i.oid_ = w.oid_) LOOP
    RAISE EXCEPTION 'table "%" has a conflict rule but is not in sluice.ingest_tables', v_name;
  END LOOP;

  -- sluice_ingest
  FOR v_sch, v_rel, v_oid IN SELECT DISTINCT w.sch, w.rel, w.oid_ FROM sluice_roles_wanted w
                        WHERE w.kind IN ('ingest', 'dead_letter', 'resolver') LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO sluice_ingest', v_sch);
    EXECUTE format('GRANT INSERT ON TABLE %I.%I TO sluice_ingest', v_sch, v_rel);
    -- Sequences of column defaults (nextval(...), serial) and identity columns.
    FOR v_seq IN
      SELECT DISTINCT d.refobjid::regclass
        FROM pg_attrdef ad
        JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                        AND d.refclassid = 'pg_class'::regclass
        JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
       WHERE ad.adrelid = v_oid
      UNION
      SELECT DISTINCT d.objid::regclass
        FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
         AND d.refobjid = v_oid AND d.deptype IN ('a', 'i')
    LOOP
      EXECUTE format('GRANT USAGE ON SEQUENCE %s TO sluice_ingest', v_seq);
    END LOOP;
  END LOOP;
  FOR v_sch, v_rel IN SELECT DISTINCT w.sch, w.rel FROM sluice_roles_wanted w WHERE w.kind IN ('ignore', 'update', 'resolver') LOOP
    EXECUTE format('GRANT SELECT ON TABLE %I.%I TO sluice_ingest', v_sch, v_rel);
  END LOOP;
  FOR v_sch, v_rel IN SELECT DISTINCT w.sch, w.rel FROM sluice_roles_wanted w WHERE w.kind = 'update' LOOP
    EXECUTE format('GRANT UPDATE ON TABLE %I.%I TO sluice_ingest', v_sch, v_rel);
  END LOOP;

  -- The delivery tables of sql/007_delivery.sql (spool record ids, Idempotency-Key tokens): the
  -- writers claim ids (INSERT … RETURNING), read them and prune old ones (DELETE).
  FOR v_sch, v_rel IN SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relkind = 'r' AND c.relname IN ('sluice_spool_committed', 'sluice_idempotency_keys')
                         AND n.nspname = ANY (current_schemas(false)) LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO sluice_ingest', v_sch);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON TABLE %I.%I TO sluice_ingest', v_sch, v_rel);
  END LOOP;

  -- sluice_policy
  GRANT sluice_ingest TO sluice_policy;
  FOR v_sch, v_rel, v_oid IN SELECT DISTINCT w.sch, w.rel, w.oid_ FROM sluice_roles_wanted w WHERE w.kind = 'policy' LOOP
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO sluice_policy', v_sch);
    EXECUTE format('ALTER TABLE %I.%I OWNER TO sluice_policy', v_sch, v_rel);
    -- Native partitions do not follow their parent's owner: each one is given too.
    FOR v_seq IN SELECT t.relid::regclass FROM pg_partition_tree(v_oid) t WHERE t.relid <> v_oid LOOP
      EXECUTE format('ALTER TABLE %s OWNER TO sluice_policy', v_seq);
    END LOOP;
  END LOOP;
END
$roles$;
