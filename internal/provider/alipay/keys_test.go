package alipay

import (
	"crypto/rsa"
	"testing"
)

// Keys and known answers shared by the tests.

// katKeyPEM is a test-only RSA key (generated with openssl genrsa for these
// tests, never registered anywhere). Known answers below were computed from
// it with openssl, independently of this package.
const katKeyPEM = `
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAvLZRFeGIcKe8pZcifGn3Z0RpkVYOyFxurGbjc6P+ywg7mbhi
hAFyUn5AyB849hbFJPmQSxKr99gvqXk/Nt9q7jlg6luFcfBnUCLGejW9k+nCR4ys
4d8VJZjDwCIqNpbifkX3E7W4OUPPHuLY9s0hpqTEocTF/z+kQ3/xiZJVgvgrIJW+
yaYh4trdHbOWkuDuF1aH0p1NNgCptX+hO02Tp3sIrkBBOZf+Tt3JiFUb/2A3ZZo1
O+DDUG4gi3xwyVXAuHAz1nQ0MxzGlgm1PZi5b6ushRoQfF8XyWJtaMCSuzWRvvUS
GLNoCNySlwGLkO/JMwVw2cRgfqjAq8ZLYrqtzwIDAQABAoIBABLcbVXwsNiC8022
QXn02geGD2pkEwh/MIfmT/+8BC3FDgvq9rG3NqFnFqYfH2wn0h7EG2IIJOGZx7MP
uBE4cEa3ZmfWAOGRQ7TUh54ppop/jRg7R6uFm+aiPO0ER9AlRtA/FuxEjSaaupCd
ifjU1MhZOdaUmljMwr1aWXOaCWuUTMZVoy4Mboxz36nhnTvCy1/4tlVPheo095mb
5joXGRZw7EOfJqzzUB8fzBDC9bGtjaGShnqgmy0igRmJNgnMZzOlvbk/QvFh8wi0
tEXlUw0569LE+S2jmVuahbjxATtrEwUpcSaskPGk1gP5Hz21HG439ubC0mWv6Hw2
ngaeBXECgYEA/1Pf6YVBMNsYNYGpvC8dLk3RQti77XV2UIlJec/L9trwceaTsZKB
/JVvSfJrzMzMXVrE19k0noeFinQ2mLDSRWcz4JdQ5qoN93N8AkDXReK6mCslqCxL
pF3zvRpvCN5bsa/NQiOnduE29T85pyCUqMz/W6G4zZ2KoloA8scMCfECgYEAvTWI
xRRdDKqfRgkRsqCuTo2stIzy3i0yGZnsioWRhnzTIB9Qfv/WW3fDK7YTXvL62W5+
1UQ5NVVinsdeWk6MUH/81Vq0e3Bwlb+jYnCerr8KZ0CABuTi9/LYtu6RwhLTYiM9
N7LMjSPMoftPyDBFrXmlw8SIhA20tiA/rfTIc78CgYEAj6Oa8x+RJjALtYZFe+Wx
b+w9TnLpflQ3hGVHnaymHTDcVeeWrS4zzGoxGpOzy5pnWhmHZbr/HDQ3j0WDtXC8
SmkdyTq3O5ztkIk6eXYK5XkA6jxTygFpaIWmanslfgLB6Pty6MNwIbPfnCa+g2QT
3ca93cnkUmBPrrgdknciMbECgYA/P+ocl5YTaeYcb2OvJu+d6tZU9NkrVEhvLnlY
RRZEsu2Qy2cJTVTG9t4TeqY3E1qv3LQhbtEA9y4kjdkIr0FQl7hZSh0TNp8sMAfa
HHOvTsWXhoRFybXl1RSE8nNfQRPQtp78Q5UFiXYan/wnm5tvRj8XlldcbYh/aYBg
Enf/2QKBgFrhlWF5h2nXLSt8ckD2RzFzLlVEMK9HKoheCxou49OcEP85Ht5mmfVT
IcjwyaDidd03sc9D3KUMm14vXq7qtwgNHCMZAz6nE+6e5jzOFDIh9S9KZJe0ZaSt
6RnvtFOQBxzT0lDDQDtE1fa5g26CeQuDzqa2P6G5Sh87qBTkquNK
-----END RSA PRIVATE KEY-----
`

// katPublicKeyPEM is the public half of katKeyPEM (openssl rsa -pubout).
const katPublicKeyPEM = `
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvLZRFeGIcKe8pZcifGn3
Z0RpkVYOyFxurGbjc6P+ywg7mbhihAFyUn5AyB849hbFJPmQSxKr99gvqXk/Nt9q
7jlg6luFcfBnUCLGejW9k+nCR4ys4d8VJZjDwCIqNpbifkX3E7W4OUPPHuLY9s0h
pqTEocTF/z+kQ3/xiZJVgvgrIJW+yaYh4trdHbOWkuDuF1aH0p1NNgCptX+hO02T
p3sIrkBBOZf+Tt3JiFUb/2A3ZZo1O+DDUG4gi3xwyVXAuHAz1nQ0MxzGlgm1PZi5
b6ushRoQfF8XyWJtaMCSuzWRvvUSGLNoCNySlwGLkO/JMwVw2cRgfqjAq8ZLYrqt
zwIDAQAB
-----END PUBLIC KEY-----
`

// katContent is the example string-to-sign of platforms.md §2.3.
const katContent = "app_id=2014072300007148&charset=utf-8&code=4b203fe6c11548bcabd8da5bb087a83b&format=JSON&grant_type=authorization_code&method=alipay.system.oauth.token&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0"

// katSign is `printf '%s' "$katContent" | openssl dgst -sha256 -sign kat.pem | base64`.
const katSign = "NUXjZbh0oc+IE0cwBwA0ZLMjYmhXNRRz+H7fVfoP1rmb9u1bEcN+291drkokGWzbTFIC8dytspVh5tEqdsCWHM9XGxYnSX+dZEx1uA1kWgSsRo1QP/Y8PdTIp3fvSlMGq+lcKjOWl1RVJCireij3jN5BL9VpMYQPJkGfmTiJ6ki8B294zI7rcoX8chrK84R48Cdnb++LZ7A/TxYMrmjohrw7UDr2UseuVbm1GmE+P4/NM2TEC3px0N2DzPJejJsNXjcVHKgIrWjr8Kw6XvsCzfAUmiN1kSj5eIuXGG1ERCcZ5MjdLfqtgGAjRIVdyDyI9Igs6UJf+TuyfTUkrvfqew=="

// The derived AES vector of platforms.md §2.9 (key published in the
// alipay-sdk-nodejs-all tests).
const (
	vectorAESKey     = "aYA0GP8JEW+D7/UFaskCWA=="
	vectorMobile     = "1597671905"
	vectorCiphertext = "4AOYHE0rpPnRnghunsGo+mY02DzANFLwNJJCiHfrNh2we+X5AAoad9ZH/8U2jkBBReukwx0ETW2b88v62vA4iw=="
)

// vectorPhoneSign is the RSA2 signature by katKeyPEM (standing in for the
// Alipay key) of the ciphertext in double quotes, as Alipay signs it:
// printf '"%s"' "$vectorCiphertext" | openssl dgst -sha256 -sign kat.pem | base64.
const vectorPhoneSign = "Qs9LH2VXv0OGjyrVIL7d64X0vX3jXBEJxNAAhy2tLJ/yFXVcjF5YlFijG99q8T6/GL6A0Pg4LdcvTm2WyTAtyTF26F44jwpKNPdRs9shcNcX4FRvBIpxGiydKSb42msVqdv73drmwqquuUYoWE7WxBBhzL55QfRlGdrGBM4gXV/g4QXHXRqmxRtVp7cc/8AGHRzDT/BiZ+c8ZRAt2RAblx6A1KCq9hl3JrOfZnvkWUIHxJgJcQajD05Ch55L5Qmr+aRsri0phy+Aa5sbKUUkE3PJoNzt9mYPrQdw+nU4wgYm3G01rslzdfPvh/IvWQLbHBQZ855cQyoWN3POaF7dAw=="

// The real sandbox answer and Alipay public key of platforms.md §2.7
// (alipay-sdk-nodejs-all test "checkResponseSign should work").
const (
	realBody      = `{"alipay_open_file_upload_response":{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"},"sign":"F+LDzpTNiavn7xVZPGuPCSSVRSmWzJGgtuji6tVELGEaqMaNj0jRKXUEr5nloZJBBmwEnddOyCjjepMmrTKTvoOqQ0Efxpr/R1iEeHTHVbb/Q8TTh6Up5gHJDkILdaWS2q1cWeQ6VT+HQY9P3WRXS7uhILHuDODIhpAyCu5KhWGt0rMCIG+Im6NODJP2oohtSCtmTFXg58HH587Z2y2bdbjzOxLvzD9IrU1imghXQ2S/Q+wMIvRk9on6cWnBLkrNvJKapA2ReNGWOwyuASvB9zDVzhMPbR+3mfRGkVDxsq5HYLjBKGskJMXHw0HuugZij6ScRuaLPODhmHwr/pJ9yw=="}`
	realSigned    = `{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"}`
	realPublicKey = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAk7LzhmMa2c4qQd4fqAqenfbuFoA7stPKvoS1LrZEsVnOOGUUjwoa1oU9xsSPjcOWhIerU/VAN4J95GIAXx59ipcleIyfLn2FhHXPgLJpvo+b2jJFyn/1/DbeJDh+0yDVAOf50Z7HhI0mdUhFMkXlT7BU0ZMtJf/TmISFEfhDU/w6qFd6D42L97byAkq0K6LroglSVF24GqJEa7hSeUIkZWj7RasykXrc2uVJ1+ejkXE0LyPxa2AHykMGbJLf5SiZvaNzUZgnKIR36mLOHpQ/2JCXxhXZYUWHzy0kMH54JcUEeksFWBYLGvLjV1phbcUIc3Q76tIuqApY6E222OoZZQIDAQAB"
)

// testKeyPEMs are two more test-only keys (openssl genrsa, never registered
// anywhere): fixed rather than generated, so fuzz workers, whose
// instrumented math makes key generation crawl, start at once.
var testKeyPEMs = [2]string{`-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAlMxpKjFULLVu0hRkD8wCmJYzTo2cqv4vOwoWtqXElHYLo2YL
vk1eqHRvSQGuDnkPs71EFRehPO7EXzkYNM3ZXIHuU9gzUdr2Fnqrm4CAsMfdTQgI
FTxyErku6kAFtqxyD2dsG6yhwoSwaqzAqBTZRrVdVoX8NqN+ocpaOTb1zDwRXzLR
Kf0arObEVJ/0V7jRkdCOGmyr6xuSwuJZGbFqJvn+Jvg6VP3aD5wWf5CgBqyeqxah
oDApkglJ1PL4SL0RO0DJ9bYE4VkGAiAa1cja3KYbr+HnN9AALQXiJG8vOVB4zZ8h
b+0QjHKhYQcEvywdq0zHQn+9Z7orsb9BlEhyoQIDAQABAoIBAA/+ahi7P/qk7yos
6kB5w5cBILdYfgwx0YPSvB7vxycqCmrgJMeqFfryC6WDmmDl3wEz3ns3P1aHAkaL
TYXHe+NMoqsSecRaTnSbb5IBsv4izYUNJZ6au6w1iXcWYJwtAamUNUjtj7Q9LPVF
ElmUEXK0kI7PTLfWxQgWRwe6rPBBzpH2DbYj4jt7iUbcvbKX6C/fE24g/au7/wz9
9wE90YS8gkT0TmDFxH4RxKvR6pqKH1pXUid+tkJCfltAFXIlnPem45P5DFhI5ggh
kNkw7s6GQ/7k/L16NNrH5+rmdIDtdYDbNnsfsZKAfyOl7c3WzFDH/F4trYRFeaCB
c3Kd+j0CgYEA0P3UzLVTjeL0L20sjDL03gseP7SwjPEWfgtTDGMLxQIR9DrZLl2g
OhfkoebTvq7OyIRda+Ub86imJr9re0jYskyoGiRosSmJXTr/GvyprKGA5nVStnIL
Io2d69r4dFpJKFsh2EWJG8lkzJh07E6ZS8uiWBtCCXSnAsPeZ1Ux/PcCgYEAtkSJ
v3LfP7IaoFlnfaIlIsQH8IU9UkztJuZzmHo9/xSsSAl2z5m+zczGp9ECUzt4QSW3
wBazPJ+sA+aGJIANr8s3pbIMz0pawxyw3PUNTP7XJvcMzJlfwJMI1/xC6rf/2T+f
N17P/Eohy6suI/r/71Zn7JwHMKNkDyn4yn7/HycCgYAZmO1mgVMRjtmvsWSCa39Y
bu4uiVgSezjxCTwLyVnYsG84hbiyGB+W3fRP7DDFKy4Cm0vB+lbZGi/3kPx+Jib8
d60jPpBgGqFLfP1f9dBmZ4WdNIOD+yXn/oZ4K+LAhYpuWfMkRSgM8jbZZFb11o6q
HO/ucLA+7j3CdfEYoPO1cwKBgDUOTF6bTJsY+CE3BSYP/elZ0MnVrxz24Y2SRZHb
+5H17ZRmlNwnb+AuPKF6+MdLp1ynYw6aTQBXplXYU7HqSJGkgQVNh+cLSNJE1sLq
3j1MbUqdXW9tMe83nbppZv02JFaT63/NrJNO7PmBUcQNe1Sq/UNlw74HwcecOxyO
zSq/AoGBAJtWB4cZFMSgr34Mj/9vgMpnXo79ftQ386oh8FWNu8xIjA1/XDbvJ96W
aGmj6mTER+39hjNXMTVeLVVcpXrCKrOo43vFOUsDSl3uPJbpw/1Gt4Pr5wxqeW83
CX11h76XxFkN+1FavAx/hG6GBAgFgZ5IuR0LhLnZCH7twrFO+hAU
-----END RSA PRIVATE KEY-----
`, `-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA0UNhtyiim8CuzsPyMx6DTQvo5eq1nOe3+8xLORj9DwWmPa7b
o2tXuV0qnBZb4uqlwRMaKbgSMbOhvb/+Ov1HIfRKfhTlzgLj5AV6tHia4eTwYsow
/LSAs2sLb3nBUyG+5LjDwS9GjiapPKI/a8LwsVHcg5xdwCLX9kJkHqYHXU2ufgpL
I1ygKx6nBQ3bWy3sEQuej8573V/06smeneoJD7L+PKeK97rtJsUfVVV0vVx+ip+3
nW1Muy9/Xb3Z0MoJtdZoMW5QwmPPQnl4mOEpekgIlZg3fNAF3vbltFQ3NKACojrU
kwxvrhUXeNbuewomB0yHIbULwXKjd6C+d7DheQIDAQABAoIBABLYoO8EKZrh4Exu
ULyCWbxhX3T/baJHKyZx+G9YvQeykE17VzwRQYoH5ju+9sEJtWpdTEyoD3lq7lze
suiAoXyhGelfe+/RClGhnbKtrvM7sVuQTpefsPyXniTIwBy6zAygyD54gb/xIuo7
SX9sw80QbI3s0fOpH66FvasV9FFWcTikLIHYQ36f2shM+rMXdn/PDUzQqx1qxqOq
U1OLNwnL3Cv8aDxLzJvsaNDW9y5jf+8L3/PaJGotA4ILxbcxwy/osSSHjp/VNrCH
dcO3lwKPyRp5LMBzsqIEjtf2JP0FJkvzkDeCChUSWqC5a/Eb+6F+d11Yo8DVOlWV
wsL6jgECgYEA6boxO+NayJH0JVNAFWvtOt4U9JrE8sUljpbaGis5tMaoC2ufgciS
v4GRZX4awakCzIJOYFIOQoxQxMCGWwCMCw+iITFHw6inVu+DD6aI5zrTvotmLhQZ
9ZnEN9imYzIQcKZ7B02Fo+eo0g5Z15/IUdb+WHAUZAZX0Hd/ux5e2HkCgYEA5TRi
apUgWfYqN8eb9X2FWSDwkLKwNhXWI9FGbU2dGbhVCtSQGWAUnDdCxB7IdBB+PsFQ
KLv0Dw9DzWy5YE1BewaKoZ6VpSqoqIXgVL+rXO08+ypEzsCDAm+LMDc4B0qyCcw3
2hBJGrs5e7SAxNCGiFc0/96jVEVhMKxZbTwCEQECgYEAuZIteQFAmTLZB7GbleaF
ClI9jSA88wv4j8fSDyj2vkNkNP0UPfVEHmz/RffjwpMwN7PWCr/btpa1oiHCCwra
JgYZkgUQl5aWln3AL3LoC783U3hWfotTOR8HHdgT83pSdz6XO+sfCk3qSi0+w+aH
JANxGkKSzgADRO88KRMp9vECgYEAsiBH6/UBM2jv3nGubtah72Z+DrYP47iMt0FI
rmGHGhn7XXNcmZvl6JG5vZj+x9SZiEPL/Bw1zA5c7yTz3DeuD+JBkuEgA0Bn2rBQ
awyaLJnirn9nAhbyuc3eKhZ/4IrYWmzvavUFG1Utk0nwWQSFySec9M0dubxBkAYh
aZcdNAECgYBqeSLFo1OTRm90RuFtJEp5FYfcyCcrJ3fe/rS3edFwUPX9bL29/Eka
meN2hD7J535GFb2wXMWRHo2++wdCAR5tDNaudgbU6jc+Op+KcvIsALCHMvBUb5rD
5n9BQ9+FY8NnYqmavdbZa51YaQnIZQdzRvwyy457q+c7CyC3PH5s/Q==
-----END RSA PRIVATE KEY-----
`}

// testKeys returns the two fixed test keys.
func testKeys(tb testing.TB) (a, b *rsa.PrivateKey) {
	tb.Helper()
	var ks [2]*rsa.PrivateKey
	for i, s := range testKeyPEMs {
		k, err := ParsePrivateKey(s)
		if err != nil {
			tb.Fatalf("testKeyPEMs[%d]: %v", i, err)
		}
		ks[i] = k
	}
	return ks[0], ks[1]
}

func katKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := ParsePrivateKey(katKeyPEM)
	if err != nil {
		tb.Fatalf("katKeyPEM: %v", err)
	}
	return k
}
