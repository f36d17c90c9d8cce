// Package redact removes personal data and secrets from text before
// `llmfence guard` stores a prompt or a response (capture is off by
// default; see the guard's CaptureConfig).
//
// # What is detected
//
// The patterns are data: patterns.yaml, embedded and versioned, each entry
// with its own examples that the tests run alone and together. The list,
// generated from that file, is docs/redaction.md. In short: e-mail
// addresses; phone numbers (E.164 with +, North American, Japanese);
// payment card numbers; US Social Security numbers; IBANs; Japanese
// Individual Numbers (My Number); IPv4 and IPv6 addresses; AWS access key
// IDs; GitHub, Slack, Google and OpenAI-style keys; JWTs; PEM private key
// blocks; llmfence's own API keys (lf_<id>_<secret>); Bearer credentials;
// passwords in URLs; and the values of password, secret, token and API key
// assignments (password=..., "api_key": "...", DB_PASSWORD=...), where the
// name is kept and only the value is replaced.
//
// Each match becomes [REDACTED:<label>]; [Redactor.Redact] also returns how
// many matches each pattern replaced, which captures store with
// [Redactor.Version].
//
// # Validators
//
// Numbers with check digits are confirmed before they are redacted: card
// numbers by the Luhn (mod 10) check, IBANs by ISO 13616 mod 97 (and a
// length of 15 to 34), My Numbers by their check digit. A number of the
// right shape that fails its check is left alone, and no other pattern may
// redact a part of it (so a 16-digit order number that fails Luhn does not
// lose 12 digits as a "My Number").
//
// # Overlaps and repeated passes
//
// Of overlapping matches the earliest wins, then the longest, then the
// pattern listed first in the data: a PEM block or a JWT is replaced whole
// and nothing inside it is looked at again. Markers already in the text are
// never matched into. Redact repeats its pass on the lines that changed
// until nothing more matches (at most four passes), since a replacement can
// uncover a match that an overlapping candidate hid; hence
// Redact(Redact(s)) == Redact(s), which the fuzz test checks.
//
// # Limits
//
// Pattern matching finds what has a recognisable shape; it does not
// understand text. False negatives: names, postal addresses, dates of
// birth and other free-form personal data are not detected; numbers
// written with unusual separators ("4111.1111.1111.1111", "123 45 6789"),
// spelled out or split across lines are missed; a password in prose
// ("my password is hunter2") is missed, only assignments are caught;
// secrets of services without a distinctive prefix are caught only as
// assignment values; a regex candidate that swallows more than the number
// (an IBAN followed by upper-case letters) fails its check and is missed.
// False positives: version strings that look like IPv4 addresses
// ("1.2.3.4"), 13-19 digit numbers that happen to pass Luhn, 12-digit
// numbers that pass the My Number check (one in ten does), 10-digit
// numbers grouped like phone numbers, and any "token: x" or "key = x"
// value are redacted. Redaction of captures errs towards removing too
// much.
//
// # Why regular expressions
//
// Go's regexp package is RE2: matching is linear in the length of the text,
// with no backtracking blow-up, so no input, however hostile, makes
// redaction slow; and the patterns stay readable data that can be reviewed
// and tested one by one. The price is that RE2 has no look-around or
// back-references: word boundaries (\b) and validators do that work.
//
// # Cost
//
// Redact runs on every captured prompt and response. Most text is skipped
// cheaply: each pattern declares keywords, and the package derives from each
// regex the bytes a match must contain (and how many digits, colons, dots
// and dashes); a line lacking them is not searched. Patterns that cannot
// match a newline (all but PEM blocks) run line by line on about 1 KiB at a
// time, which also lets Go use its faster backtracking matcher. On the
// reference machine (2 cores) 16 KiB of chat takes about 2 ms without
// personal data, 3 to 5 ms with a few dozen items, and 11 to 15 ms when
// most lines hold some (BenchmarkRedact16K*).
package redact
