#!/usr/bin/env node
// Prints a fresh OIDC_SIGNING_KEYS secret: a JWK set of one RS256 key
// (2048-bit RSA, which OpenID Connect requires every provider to offer)
// and one ES256 key (P-256), made with Node's own crypto. scripts/dev and
// scripts/deploy call it when the secret is not set; docs/oidc.md says how
// to rotate with it.
import { generateKeyPairSync, randomBytes } from "node:crypto";

const stamp = `${new Date().toISOString().slice(0, 10)}-${randomBytes(3).toString("hex")}`;
const jwk = (type, options) => generateKeyPairSync(type, options).privateKey.export({ format: "jwk" });
const keys = [
  { kid: `${stamp}-rs`, alg: "RS256", use: "sig", ...jwk("rsa", { modulusLength: 2048 }) },
  { kid: `${stamp}-es`, alg: "ES256", use: "sig", ...jwk("ec", { namedCurve: "P-256" }) },
];
process.stdout.write(JSON.stringify({ keys }) + "\n");
