package redact

// The validators confirm a regex candidate with the number's own check
// digits. Each receives the matched text (with its separators) and ignores
// spaces and dashes.

// luhn reports whether the digits of s pass the Luhn (mod 10) check of
// payment card numbers.
func luhn(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c == ' ' || c == '-' {
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if n%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n >= 2 && sum%10 == 0
}

// ibanMod97 reports whether s is an IBAN whose check digits are right
// (ISO 13616): the country code and check digits are moved to the end,
// letters become 10..35, and the number must leave 1 modulo 97.
func ibanMod97(s string) bool {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
		case '0' <= c && c <= '9', 'A' <= c && c <= 'Z':
			b = append(b, c)
		case 'a' <= c && c <= 'z':
			b = append(b, c-'a'+'A')
		default:
			return false
		}
	}
	if len(b) < 15 || len(b) > 34 {
		return false
	}
	if b[0] < 'A' || b[0] > 'Z' || b[1] < 'A' || b[1] > 'Z' || b[2] < '0' || b[2] > '9' || b[3] < '0' || b[3] > '9' {
		return false
	}
	rem := 0
	for i := range b {
		c := b[(i+4)%len(b)]
		if c >= 'A' {
			rem = (rem*100 + int(c-'A'+10)) % 97
		} else {
			rem = (rem*10 + int(c-'0')) % 97
		}
	}
	return rem == 1
}

// myNumber reports whether s is 12 digits whose last is the check digit of
// a Japanese Individual Number: with P(n) the n-th digit left of the check
// digit and Q(n) = n+1 for n <= 6, n-5 above, the check digit is
// 11 - (sum P(n)Q(n) mod 11), or 0 when that remainder is 0 or 1.
func myNumber(s string) bool {
	d := make([]int, 0, 12)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '-' {
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
		d = append(d, int(c-'0'))
	}
	if len(d) != 12 {
		return false
	}
	sum := 0
	for n := 1; n <= 11; n++ {
		q := n + 1
		if n >= 7 {
			q = n - 5
		}
		sum += d[11-n] * q
	}
	check := 0
	if r := sum % 11; r > 1 {
		check = 11 - r
	}
	return d[11] == check
}
