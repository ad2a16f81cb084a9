"""HTTP API blueprints (Flask), registered on the Dash app's server by ``create_app``."""
