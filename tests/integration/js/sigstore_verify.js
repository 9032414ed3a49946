// Verify a Sigstore bundle v0.3 (DSSE, publicKey material) with the Sigstore JavaScript verifier
// (@sigstore/verify, @sigstore/bundle) and a PEM public key: node sigstore_verify.js BUNDLE PEM
// Prints "verified" and exits 0, or prints the error and exits 1.
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(process.argv[2], 'utf8')));
const pem = fs.readFileSync(process.argv[3], 'utf8');
const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
const trust = toTrustMaterial(root, (hint) => ({ publicKey: crypto.createPublicKey(pem), validFor: () => true }));
try {
  new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
  console.log('verified');
} catch (e) {
  console.log(`refused: ${e.code || ''} ${e.message}`);
  process.exit(1);
}
