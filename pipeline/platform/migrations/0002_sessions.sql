-- Card logins (SPEC §10): a person's bearer tokens, kept as their SHA-256 only, so the
-- database never holds a usable token. `person` is the serial number of the person's
-- 利用者証明用電子証明書 (the certificate names no one); `subject` and `terminal_serial` are the
-- terminal certificate the login came through, the only one that may use the token (NULL for a
-- login over the card's own TLS client authentication: any terminal of the platform may).
CREATE TABLE platform_sessions (
    token_sha256 TEXT PRIMARY KEY,
    person       TEXT NOT NULL,
    subject      TEXT,
    terminal_serial TEXT,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
