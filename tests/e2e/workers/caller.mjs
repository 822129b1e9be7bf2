// A Worker of the same account that calls the service through a service
// binding, as an app on Workers would: the request reaches the service
// without CF-Connecting-IP. `?as=` names the caller in X-OTP-Client.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers({ "content-type": "application/json" });
    const as = url.searchParams.get("as");
    if (as) headers.set("x-otp-client", as);
    return env.OTP.fetch(new Request("https://otp.internal" + url.pathname, {
      method: request.method, headers, body: request.method === "POST" ? await request.text() : undefined,
    }));
  },
};
