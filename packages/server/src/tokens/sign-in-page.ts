/**
 * The tenant's sign-in page for the authorization code flow. Plain HTML with no script, so it
 * works in any browser and in tests driven by an HTTP client. Every value is escaped.
 *
 * @module
 */

const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)

export function renderSignInPage(input: {
  tenantName: string
  action: string
  params: Readonly<Record<string, string>>
  username?: string
  error?: string
}): string {
  const hidden = Object.entries(input.params)
    .map(
      ([name, value]) =>
        `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`,
    )
    .join('\n      ')
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign in – ${escapeHtml(input.tenantName)} – Desklink</title>
  <style>
    body { font-family: "Segoe UI", system-ui, sans-serif; background: #f3f2f1; margin: 0; }
    main { max-width: 360px; margin: 10vh auto; background: #fff; padding: 32px 40px;
           box-shadow: 0 2px 6px rgba(0,0,0,.2); }
    h1 { font-size: 1.5rem; font-weight: 600; margin: 0 0 4px; }
    p.tenant { color: #605e5c; margin: 0 0 24px; }
    label { display: block; margin: 12px 0 4px; }
    input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: 6px 8px;
           border: 1px solid #8a8886; font-size: 1rem; }
    button { margin-top: 24px; background: #0f6cbd; color: #fff; border: 0; padding: 8px 24px;
           font-size: 1rem; cursor: pointer; }
    .error { color: #a4262c; margin-top: 12px; }
  </style>
</head>
<body>
  <main>
    <h1>Sign in</h1>
    <p class="tenant">${escapeHtml(input.tenantName)}</p>
    <form method="post" action="${escapeHtml(input.action)}">
      ${hidden}
      <label for="username">User name</label>
      <input id="username" name="username" type="text" autocomplete="username" required value="${escapeHtml(input.username ?? '')}">
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required>
      ${input.error ? `<p class="error" role="alert">${escapeHtml(input.error)}</p>` : ''}
      <button type="submit">Sign in</button>
    </form>
  </main>
</body>
</html>`
}

export function renderErrorPage(title: string, message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body style="font-family: system-ui, sans-serif; margin: 10vh auto; max-width: 480px">
<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>`
}
