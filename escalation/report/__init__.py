"""Stage 5: outputs.

Table and JSON, the HTML and Markdown report (Jinja2 templates shipped as package files), the
clinical-course figure, and the atomic writing of files. Outputs read results; they never load
files or run the engine themselves.
"""
