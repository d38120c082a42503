-- pgsql-schema.sql -- a sample PostgreSQL schema for Posthaste's shared
-- tables (table NAME pgsql:/etc/posthaste/pgsql.conf; see etc/pgsql.conf
-- and smtpd.conf(5)): the domains it receives for, virtual users with
-- their password hash and mail store, aliases, and which addresses each
-- user may send as.  Keys reach the queries lower-cased: store them so.
--
--	createdb mail && psql -d mail -f pgsql-schema.sql
--	psql -d mail -c "ALTER ROLE posthaste PASSWORD 'a real one'"

-- "match from any for domain <pg>": the domains of the virtual users
CREATE TABLE domains (
	name		text PRIMARY KEY	-- example.org
);

-- "auth <pg>" (credentials) and "userbase <pg>" (userinfo)
CREATE TABLE users (
	name		text PRIMARY KEY,	-- the login, and the user an
						-- alias below names: alice
	password	text,			-- crypt(3): $6$..., $2b$...;
						-- NULL: cannot log in
	uid		integer NOT NULL,	-- the system account that
	gid		integer NOT NULL,	-- owns the mail store
	home		text NOT NULL		-- its directory: /var/vmail
);

-- "virtual <pg>" or "alias <pg>": several rows for one name are one
-- list (joined with ", ")
CREATE TABLE aliases (
	name		text NOT NULL,		-- alice@example.org,
						-- @example.org, postmaster
	dest		text NOT NULL		-- alice, bob@example.net,
						-- |/usr/bin/program ...
);
CREATE INDEX aliases_name ON aliases (name);

-- "mail-from <pg>" for authenticated users (mailaddrmap)
CREATE TABLE senders (
	name		text NOT NULL,		-- the login: alice
	address		text NOT NULL		-- alice@example.org, @example.org
);
CREATE INDEX senders_name ON senders (name);

-- "from src <pg>" (netaddr): the client address is the key, as text
CREATE TABLE networks (
	net		cidr NOT NULL		-- 192.0.2.0/24, 2001:db8::/32
);

-- Posthaste only reads: a role of its own that can do nothing else
CREATE ROLE posthaste LOGIN PASSWORD 'CHANGE-ME';
GRANT SELECT ON domains, users, aliases, senders, networks TO posthaste;
