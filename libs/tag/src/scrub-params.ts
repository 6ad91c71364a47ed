// The collector's sensitive query-parameter names (libs/enrich/url-scrub.ts), mirrored so the
// tag masks them before sending. NOTE: a copy, not an import: the image ships only the tag's
// own tree as source for esbuild (the collector imports the shared scanner from here instead,
// email-scan.ts). url-filter.test.ts fails when the two lists drift apart.

export const REDACTED = 'redacted';

export const SENSITIVE_PARAMS: readonly string[] = [
  'email', 'e-mail', 'e_mail', 'mail', 'email_address', 'emailaddress', 'user_email', 'username',
  'token', 'access_token', 'refresh_token', 'id_token', 'auth', 'auth_token', 'authorization',
  'jwt', 'bearer', 'password', 'passwd', 'pwd', 'pass', 'secret', 'client_secret',
  'api_key', 'apikey', 'api-key', 'key', 'session', 'sessionid', 'session_id', 'sid',
  'code', 'otp', 'ssn', 'phone', 'phone_number', 'mobile', 'tel',
  'first_name', 'firstname', 'last_name', 'lastname',
  'signature', 'sig', 'x-amz-signature', 'x-amz-credential', 'x-amz-security-token',
];
