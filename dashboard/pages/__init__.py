"""Pages: each module has ``layout(settings, lang, params)`` returning the page's component tree."""
