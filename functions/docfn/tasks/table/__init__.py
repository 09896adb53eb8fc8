"""The ``table`` task: a table image to cells, HTML and Markdown, through a pluggable recogniser."""
