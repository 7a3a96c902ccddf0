package crypto

import "strings"

// bech32 encoding (BIP 173) without the 90-character limit, as age uses for
// its keys, which Go's age does not export. Used to spell reply identities
// derived from a receipt.

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func bech32Polymod(values []byte) uint32 {
	gen := []uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		b := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (b>>uint(i))&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

func bech32HRPExpand(hrp string) []byte {
	var out []byte
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

// bech32Encode encodes data under hrp; the case of the result follows hrp's.
func bech32Encode(hrp string, data []byte) string {
	lower := strings.ToLower(hrp)
	var values []byte
	acc, bits := 0, 0
	for _, b := range data {
		acc = acc<<8 | int(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			values = append(values, byte(acc>>uint(bits)&31))
		}
	}
	if bits > 0 {
		values = append(values, byte(acc<<uint(5-bits)&31))
	}
	poly := bech32Polymod(append(append(bech32HRPExpand(lower), values...), 0, 0, 0, 0, 0, 0)) ^ 1
	var b strings.Builder
	b.WriteString(lower)
	b.WriteByte('1')
	for _, v := range values {
		b.WriteByte(bech32Charset[v])
	}
	for i := 0; i < 6; i++ {
		b.WriteByte(bech32Charset[(poly>>uint(5*(5-i)))&31])
	}
	if hrp == strings.ToUpper(hrp) {
		return strings.ToUpper(b.String())
	}
	return b.String()
}
