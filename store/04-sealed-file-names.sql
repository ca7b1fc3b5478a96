-- v4 -> v5: Seal attachment file names
-- A file name can itself name the patient or the condition ("MRI knee J Doe.pdf"), so it is
-- sealed like the file; file_name stays for rows written before this version, and careline
-- seals those at startup.
ALTER TABLE careline_attachment ADD COLUMN name_sealed bytea;
