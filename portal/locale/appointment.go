package locale

// The appointment card on the thread page: a reminder awaiting the patient's answer.
func init() {
	for key, text := range map[string]string{
		"appointment.heading":   "Your appointment",
		"appointment.when":      "%s",
		"appointment.with":      "With %s",
		"appointment.at":        "At %s",
		"appointment.question":  "Will you come?",
		"appointment.confirm":   "Confirm",
		"appointment.cancel":    "Cancel appointment",
		"appointment.confirmed": "Thank you: your appointment is confirmed.",
		"appointment.cancelled": "Your clinic is told that you cannot come. They may contact you to find a new time.",
		"appointment.gone":      "This appointment no longer needs an answer (it was answered, changed or has started).",
	} {
		english[key] = text
	}
	for key, text := range map[string]string{
		"appointment.heading":   "Su cita",
		"appointment.when":      "%s",
		"appointment.with":      "Con %s",
		"appointment.at":        "En %s",
		"appointment.question":  "¿Vendrá?",
		"appointment.confirm":   "Confirmar",
		"appointment.cancel":    "Cancelar la cita",
		"appointment.confirmed": "Gracias: su cita está confirmada.",
		"appointment.cancelled": "Avisamos a su clínica que no puede venir. Es posible que le contacten para buscar otra hora.",
		"appointment.gone":      "Esta cita ya no necesita respuesta (ya se respondió, cambió o ya empezó).",
	} {
		spanish[key] = text
	}
}
