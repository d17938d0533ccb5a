"""The page's files, from `nymchat/web/static/` inside the package (and so the zipapp):
read once, each served at `/NAME` (index.html also at `/`) with its content type."""

from importlib import resources

from nymchat.web.gate import File

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml; charset=utf-8",
}


def load() -> dict[str, File]:
    """The static files by the path they are served at; a file of another type is not
    served."""
    files = {}
    for entry in resources.files("nymchat.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in TYPES:
            files["/" + entry.name] = File(entry.read_bytes(), TYPES[suffix])
    files["/"] = files["/index.html"]
    return files
