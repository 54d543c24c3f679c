-- A third key role, `viewer`: a person's read-only admin credential. It may
-- read every admin resource and sign in to the dashboard, and may change
-- nothing; it is refused on the decision endpoints (it is not an app).
ALTER TABLE api_key DROP CONSTRAINT api_key_role_check;
ALTER TABLE api_key ADD CONSTRAINT api_key_role_check CHECK (role IN ('app', 'admin', 'viewer'));
