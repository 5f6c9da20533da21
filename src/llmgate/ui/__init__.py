"""The admin web UI at /ui: server-rendered pages over the management API's own functions.

    router.py      the /ui Router: pages, static files, the sign-in guard and its error pages
    session.py     signed session cookies, CSRF tokens, the failed sign-in throttle (pure, clock passed in)
    auth.py        who is signed in (session cookie or HTTP basic auth), sign-in and sign-out, CSRF checks
    render.py      Jinja templates → HTML responses with the UI's security headers
    forms.py       form fields → the management API's request Structs, errors by field
    charts.py      time series and bars as SVG, drawn on the server
    overview.py, projects.py, tokens.py, usage.py, deployments.py, configuration.py    one controller a page
    templates/, static/    the pages, the stylesheet, ui.js and vendored htmx (static/vendor/)
"""
