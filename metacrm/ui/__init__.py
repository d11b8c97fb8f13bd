"""Web layer: the Flask app factory, the JSON API and (later) the generated pages."""
