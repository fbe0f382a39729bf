"""Render jobs: events and cancellation, the job runner (resume, encode, clean up), video, zoom, image."""
