"""Partner profiles, their categories, colleagues' invitation codes and change history.

The application table starts minimal here (name and status), so the directory's rule, "at
least one approved application", holds from the start; later migrations extend it.
"""

from app.db import sql_migration

ID = "2026-11-28T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partner profiles, categories, invitation codes, history, applications"

SQL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE category (
    id serial PRIMARY KEY,
    key varchar(40) NOT NULL UNIQUE,
    name_nl varchar(100) NOT NULL,
    name_en varchar(100) NOT NULL,
    position integer NOT NULL DEFAULT 0
);

INSERT INTO category (key, name_nl, name_en, position) VALUES
    ('administratie', 'Schooladministratie', 'School administration', 10),
    ('boekhouden', 'Boekhouden en facturatie', 'Accounting and invoicing', 20),
    ('communiceren', 'Communiceren', 'Communication', 30),
    ('hrm', 'HRM en personeel', 'HR and staff', 40),
    ('leerlingvolgsysteem', 'Leerlingvolgsysteem', 'Pupil monitoring', 50),
    ('leerplatform', 'Leerplatform en e-learning', 'Learning platform and e-learning', 60),
    ('planning', 'Planning en uurroosters', 'Planning and timetables', 70),
    ('inschrijvingen', 'Inschrijvingen', 'Enrolments', 80),
    ('toegang', 'Toegang en identiteit', 'Access and identity', 90),
    ('infrastructuur', 'ICT en infrastructuur', 'IT and infrastructure', 100),
    ('maaltijden', 'Maaltijden en betalingen', 'Meals and payments', 110),
    ('overige', 'Overige', 'Other', 1000);

CREATE TABLE partner (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug varchar(220) NOT NULL UNIQUE,
    name varchar(200) NOT NULL CHECK (btrim(name) <> ''),
    -- Names are unique ignoring case and surrounding spaces.
    name_key text GENERATED ALWAYS AS (lower(btrim(name))) STORED UNIQUE,
    enterprise_number char(10) CHECK (enterprise_number ~ '^[0-9]{10}$'),
    description varchar(2000) NOT NULL,
    email varchar(320) NOT NULL,
    contact_person varchar(200) NOT NULL,
    street varchar(200) NOT NULL,
    house_number varchar(20) NOT NULL,
    postcode varchar(20) NOT NULL,
    municipality varchar(100) NOT NULL,
    country varchar(100) NOT NULL,
    public boolean NOT NULL DEFAULT true,
    active boolean NOT NULL DEFAULT true,
    website varchar(500) NOT NULL,
    extra_info varchar(2000) NOT NULL DEFAULT '',
    logo bytea NOT NULL,
    logo_type varchar(40) NOT NULL,
    logo_etag varchar(64) NOT NULL,
    created_by uuid REFERENCES account (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- What the directory's search looks in, lower-cased once on write rather than per search.
    search_text text GENERATED ALWAYS AS (lower(name || ' ' || description)) STORED,
    -- Shown in the public directory: active, public and with an approved application. Kept
    -- by the triggers below, so it can never disagree with the rows it is derived from; the
    -- directory reads one indexed column instead of checking applications per partner.
    listed boolean NOT NULL DEFAULT false
);
CREATE INDEX partner_search ON partner USING gin (search_text gin_trgm_ops) WHERE listed;
CREATE INDEX partner_listed ON partner (name_key) WHERE listed;

CREATE TABLE partner_category (
    partner uuid NOT NULL REFERENCES partner (id) ON DELETE CASCADE,
    category integer NOT NULL REFERENCES category (id),
    PRIMARY KEY (partner, category)
);
CREATE INDEX partner_category_category ON partner_category (category, partner);

-- One account belongs to at most one partner profile.
ALTER TABLE account
    ADD COLUMN partner uuid REFERENCES partner (id) ON DELETE SET NULL,
    ADD COLUMN partner_linked_at timestamptz;
CREATE INDEX account_partner ON account (partner);

CREATE TABLE invitation_code (
    id serial PRIMARY KEY,
    partner uuid NOT NULL REFERENCES partner (id) ON DELETE CASCADE,
    code_hash varchar(64) NOT NULL UNIQUE,
    -- The last characters, so users can tell their codes apart in the list.
    hint varchar(8) NOT NULL,
    created_by uuid REFERENCES account (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX invitation_code_partner ON invitation_code (partner, created_at);

CREATE TABLE partner_change (
    id bigserial PRIMARY KEY,
    partner uuid NOT NULL REFERENCES partner (id) ON DELETE CASCADE,
    account uuid REFERENCES account (id) ON DELETE SET NULL,
    account_email varchar(320) NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    -- {"field": ["old", "new"], ...}
    changes jsonb NOT NULL
);
CREATE INDEX partner_change_partner ON partner_change (partner, changed_at DESC);

CREATE TABLE application (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    partner uuid NOT NULL REFERENCES partner (id) ON DELETE CASCADE,
    name varchar(200) NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'nieuw'
        CHECK (status IN ('nieuw', 'goedgekeurd', 'geweigerd', 'gearchiveerd')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX application_approved ON application (partner) WHERE status = 'goedgekeurd';

CREATE FUNCTION partner_is_listed(p partner) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p.active AND p.public AND EXISTS (
        SELECT 1 FROM application a WHERE a.partner = p.id AND a.status = 'goedgekeurd')
$$;

CREATE FUNCTION partner_set_listed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.listed := partner_is_listed(NEW);
    RETURN NEW;
END
$$;
CREATE TRIGGER partner_listed_on_change BEFORE INSERT OR UPDATE OF active, public ON partner
    FOR EACH ROW EXECUTE FUNCTION partner_set_listed();

CREATE FUNCTION application_refresh_listed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE partner p SET listed = partner_is_listed(p)
        WHERE p.id = OLD.partner AND p.listed IS DISTINCT FROM partner_is_listed(p);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE partner p SET listed = partner_is_listed(p)
        WHERE p.id = NEW.partner AND p.listed IS DISTINCT FROM partner_is_listed(p);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER application_listed_on_change
    AFTER INSERT OR DELETE OR UPDATE OF status, partner ON application
    FOR EACH ROW EXECUTE FUNCTION application_refresh_listed();
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
