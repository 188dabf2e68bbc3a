/**
 * A copy of a JWT with a broken signature: the signature's first character changed, which is six
 * whole bits of its first byte. (Changing its last characters is not enough: they carry base64
 * padding bits, and a lenient decoder maps about 1 in 65,000 such copies back to the real bytes.)
 */
export function withForgedSignature(token: string): string {
  const [head, claims, signature] = token.split('.') as [string, string, string];
  return `${head}.${claims}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
}
