"""The rules of darkroom, as plain functions over a SQLAlchemy session. No HTTP here.

Every function that reads or writes an organization's data takes the caller's `Principal` and
answers `NotFound` for rows of another organization, so ids never leak across organizations.
"""
