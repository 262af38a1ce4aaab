-- A guardian may give a phone number, so that support can find the family
-- when the parent calls; `phone_digits` is what the search compares. Both
-- go when the family's personal data is minimised.
ALTER TABLE guardians ADD COLUMN phone TEXT;
ALTER TABLE guardians ADD COLUMN phone_digits TEXT;
