// A public client (a single-page or native app) driven by openid-client,
// the OpenID-certified client for Node: the e2e tests call it step by step.
// Each step reads one JSON object from argv[3] and prints one JSON answer.
//
//   register {issuer, metadata}                      -> the registered client's metadata
//   begin  {issuer, client_id, redirect_uri}        -> {url, verifier, nonce, state}
//   finish {issuer, client_id, callback, verifier, nonce, state}
//          -> {claims, userinfo, refreshed, reuse, after_reuse, revoked_userinfo}
//   logout {issuer, client_id, id_token, post_logout_redirect_uri} -> {url, state}
//
// openid-client itself checks what a careful client checks: the RFC 9207
// `iss` of the callback, `state`, the ID token's signature against the
// published keys, `iss`, `aud`, `exp`, `nonce`, and the userinfo `sub`.
import * as client from "openid-client";

const [step, raw] = process.argv.slice(2);
const args = JSON.parse(raw);

// Local tests speak http to the worker on localhost.
const insecure = { execute: [client.allowInsecureRequests] };

async function config() {
  // A client registered for ES256 ID tokens says so: openid-client then
  // refuses an ID token signed with anything else.
  const metadata = args.id_token_alg ? { id_token_signed_response_alg: args.id_token_alg } : undefined;
  return client.discovery(new URL(args.issuer), args.client_id, metadata, client.None(), insecure);
}

// Dynamic client registration (RFC 7591): openid-client reads the
// registration_endpoint from discovery and posts the metadata.
async function register() {
  const c = await client.dynamicClientRegistration(new URL(args.issuer), args.metadata, client.None(), insecure);
  return c.clientMetadata();
}

async function refusal(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return e.error ?? e.code ?? String(e);
  }
}

async function begin() {
  const c = await config();
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(c, {
    redirect_uri: args.redirect_uri,
    scope: "openid email offline_access",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    nonce,
    state,
  });
  return { url: url.href, verifier, nonce, state };
}

async function finish() {
  const c = await config();
  const tokens = await client.authorizationCodeGrant(c, new URL(args.callback), {
    pkceCodeVerifier: args.verifier,
    expectedNonce: args.nonce,
    expectedState: args.state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(c, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(c, tokens.refresh_token);
  // The rotated token again: refused, and the new one with it.
  const reuse = await refusal(client.refreshTokenGrant(c, tokens.refresh_token));
  const after_reuse = await refusal(client.refreshTokenGrant(c, refreshed.refresh_token));
  const revoked_userinfo = await refusal(client.fetchUserInfo(c, refreshed.access_token, claims.sub));
  return {
    claims,
    userinfo,
    id_token: tokens.id_token,
    secrets: [tokens.access_token, tokens.refresh_token, refreshed.access_token, refreshed.refresh_token],
    refreshed: { scope: refreshed.scope, sub: refreshed.claims()?.sub },
    reuse,
    after_reuse,
    revoked_userinfo,
  };
}

async function logout() {
  const c = await config();
  const state = client.randomState();
  const url = client.buildEndSessionUrl(c, {
    id_token_hint: args.id_token,
    post_logout_redirect_uri: args.post_logout_redirect_uri,
    state,
  });
  return { url: url.href, state };
}

const steps = { register, begin, finish, logout };
process.stdout.write(JSON.stringify(await steps[step]()) + "\n");
