-- Card logins (SPEC §10): a person's bearer tokens, kept as their SHA-256 only, so the
-- database never holds a usable token. `person` is the serial number of the person's
-- 利用者証明用電子証明書 (the certificate names no one); `subject` is the terminal certificate
-- the login came through (NULL for a login over the card's own TLS client authentication).
CREATE TABLE platform_sessions (
    token_sha256 TEXT PRIMARY KEY,
    person       TEXT NOT NULL,
    subject      TEXT,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
