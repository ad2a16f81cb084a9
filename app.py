"""Entry point: settings from the environment -> create_app -> serve. Only wiring lives here.

Development: ``make run`` (or ``python app.py``). Production: ``gunicorn -w 4 'app:server'``.
"""
from dashboard import Settings, create_app

settings = Settings.from_env()
app = create_app(settings)
server = app.server

if __name__ == "__main__":
    app.run(host=settings.host, port=settings.port, debug=settings.debug)
